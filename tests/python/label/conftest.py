"""A small Cu64Zr36 glass (a minimized random packing) and a fast search protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from symgnn_ase.label.config import LabelConfig

N_ATOMS = 250
DENSITY = 0.063  # atoms/Å^3, the dataset's glasses

# a carve-out of 7.7 Å (3.7 Å moving, an inexact 4.0 Å shell): a search takes well under a
# second; the machinery is the same as with the default protocol
FAST = {
    "active_radius": 3.7,
    "shell_width": 4.0,
    "searches": 2,
    "max_attempts": 3,
    "basin_max_steps": 40,
    "activation_max_steps": 150,
}


def random_cuzr(n: int, seed: int) -> tuple[np.ndarray, list[str], float]:
    """Cu64Zr36 at glass density: random positions at least 2.2 Å apart, periodic cube."""
    rng = np.random.default_rng(seed)
    side = (n / DENSITY) ** (1 / 3)
    pos = np.empty((0, 3))
    while len(pos) < n:
        trial = rng.uniform(0.0, side, 3)
        d = pos - trial
        d -= side * np.round(d / side)
        if len(pos) == 0 or np.min(np.einsum("ij,ij->i", d, d)) > 2.2**2:
            pos = np.vstack([pos, trial])
    symbols = ["Zr" if k < round(0.36 * n) else "Cu" for k in range(n)]
    return pos, [symbols[k] for k in rng.permutation(n)], side


@pytest.fixture(scope="session")
def potential_path() -> Path:
    from symgnn_ase.potential.eam import lammps_potential_path

    return lammps_potential_path("CuZr_mm.eam.fs")


@pytest.fixture(scope="session")
def small_glass(tmp_path_factory, potential_path) -> Path:
    """A relaxed 250-atom Cu64Zr36 glass (15.8 Å box) as extxyz."""
    import ase.io
    from ase import Atoms

    from symgnn_ase.label.engine import relax_glass
    from symgnn_ase.potential.eam import load_potential

    pos, symbols, side = random_cuzr(N_ATOMS, seed=3)
    atoms = Atoms(symbols, positions=pos, cell=[side] * 3, pbc=True)
    relaxed = relax_glass(atoms, load_potential(potential_path), ftol=1e-4, maxiter=5000)
    path = tmp_path_factory.mktemp("glass") / "glass.extxyz"
    ase.io.write(path, relaxed)
    return path


@pytest.fixture(scope="session")
def fast_config() -> LabelConfig:
    return LabelConfig(**FAST)
