"""Thread counts never change a barrier: 1 and 4 threads give bit-identical results on a
3240-atom glass, large enough that the neighbor list, the fused operators and torch's own
kernels all split their work over threads (a 48-atom case takes one path whatever the count)."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from symgnn_ase import SymGNNCalculator
from symgnn_ase.testing import make_tiny_model

B = "energy_barriers"


@pytest.fixture(scope="module")
def big_glass():
    rng = np.random.default_rng(0)
    atoms = bulk("Cu", "fcc", a=3.75, cubic=True).repeat((9, 9, 10))  # 3240 atoms
    atoms.symbols[rng.random(len(atoms)) < 0.36] = "Zr"
    atoms.positions += rng.normal(0.0, 0.25, atoms.positions.shape)
    assert len(atoms) >= 3000
    return atoms


def _bundled_default():
    from symgnn_ase import export

    finder = getattr(export, "bundled_models", None)
    if finder is None:
        from symgnn_ase.format import bundled_models as finder
    return finder().get("default")


@pytest.mark.parametrize(
    "kind, sizes",
    [
        ("length", {"node_dim": 64, "edge_dim": 32, "heads": [8, 4, 2, 1]}),
        ("symgnn", {"node_dim": 64, "edge_dim": 32, "heads": [8, 4, 2, 1]}),
        ("equivariant", {"node_dim": 32, "n_rbf": 16}),
        ("default", None),
    ],
)
def test_one_and_four_threads_bitwise(big_glass, tmp_path, kind, sizes):
    if kind == "default":
        model = _bundled_default()
        assert model is not None, "no bundled default model"
    else:
        model = tmp_path / f"{kind}.pt"
        make_tiny_model(model, kind, seed=2, **sizes)
    one = SymGNNCalculator(model, n_threads=1).get_property(B, big_glass)
    four = SymGNNCalculator(model, n_threads=4).get_property(B, big_glass)
    assert one.shape == (len(big_glass),)
    diff = np.flatnonzero(one != four)
    assert diff.size == 0, (
        f"{kind}: {diff.size} atoms differ between 1 and 4 threads, first {diff[0]}: "
        f"{one[diff[0]]!r} vs {four[diff[0]]!r}"
    )
    assert one.std() > 0  # a real per-atom result, not a constant
