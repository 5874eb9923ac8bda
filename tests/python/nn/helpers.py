"""What the tests of the wrapper models (smoothed, ensemble) share: a tiny single model and a
tiny ensemble of exactly invariant kinds to wrap, and the check of exact invariance."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from ase import Atoms

from symgnn_ase.compose.ensemble import export_ensemble
from symgnn_ase.testing import make_tiny_members, make_tiny_model

INVARIANT_KINDS = ("length", "equivariant", "schnet")  # exactly invariant kinds


def single_and_ensemble(
    folder: Path, seed: int, members_seed: int, std_scale: float = 1.0
) -> tuple[Path, Path]:
    """(``folder/length.pt``, a tiny ``length`` model of ``seed``; ``folder/ens.pt``, the
    ensemble of :data:`INVARIANT_KINDS` of seeds ``members_seed``, ... with ``std_scale``)."""
    single = folder / "length.pt"
    make_tiny_model(single, kind="length", seed=seed)
    ens = folder / "ens.pt"
    members = make_tiny_members(folder / "members", INVARIANT_KINDS, seed=members_seed)
    export_ensemble(members, ens, std_scale)
    return single, ens


def assert_rotation_and_reflection_invariant(
    predict: Callable[[Atoms], np.ndarray], atoms: Atoms, atol: float
) -> None:
    """``predict`` gives the same numbers (within ``atol``, no relative slack) on ``atoms``
    rotated by a random rotation, and by that rotation times a reflection. Exactly invariant
    models are held to 1e-6 eV: float32 round-off of edge vectors formed in float64."""
    ref = predict(atoms)
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    for rot in (q, q @ np.diag([1.0, 1.0, -1.0])):
        moved = atoms.copy()
        moved.set_cell(atoms.cell.array @ rot.T, scale_atoms=False)
        moved.positions = atoms.positions @ rot.T
        got = predict(moved)
        print(f"invariance: max |rotated - original| {np.abs(got - ref).max():.3g}")
        np.testing.assert_allclose(got, ref, rtol=0, atol=atol)
