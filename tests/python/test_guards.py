"""The ASE calculator refuses what no model was trained on and never returns a non-finite
barrier: a NaN model output, atoms closer than 0.5 Å, an absurd density."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from symgnn_ase import SymGNNCalculator
from symgnn_ase.calculator import MAX_NEIGHBORS, MIN_DISTANCE
from symgnn_ase.testing import make_nan_model, make_tiny_model, random_glass

B = "energy_barriers"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("models")
    out = {}
    for kind in ("symgnn", "equivariant"):
        make_tiny_model(folder / f"{kind}.pt", kind)
        make_nan_model(folder / f"nan_{kind}.pt", kind)
        out[kind] = str(folder / f"{kind}.pt")
        out[f"nan_{kind}"] = str(folder / f"nan_{kind}.pt")
    return out


@pytest.mark.parametrize("kind", ["symgnn", "equivariant"])
def test_non_finite_output_is_an_error(models, kind) -> None:
    calc = SymGNNCalculator(models[f"nan_{kind}"])
    with pytest.raises(ValueError, match=r"returned non-finite barriers for 20 of 20 atom\(s\)"):
        calc.get_property(B, random_glass(20, seed=1))
    assert B not in calc.results


def test_coincident_atoms(models) -> None:
    calc = SymGNNCalculator(models["symgnn"])
    atoms = random_glass(20, seed=2)
    atoms.positions[9] = atoms.positions[4] + [0.3, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"atoms 4 and 9 are 0\.3 Å apart \(closer than 0\.5 Å\)"):
        calc.get_property(B, atoms)
    atoms.positions[9] = atoms.positions[4] + [MIN_DISTANCE + 0.01, 0, 0]  # allowed, if odd
    assert np.isfinite(calc.get_property(B, atoms)).all()


def test_tiny_periodic_cell_is_its_own_neighbor(models) -> None:
    calc = SymGNNCalculator(models["symgnn"])
    atoms = Atoms("Cu", positions=[[0, 0, 0]], cell=[0.4, 3.0, 3.0], pbc=[True, False, False])
    with pytest.raises(ValueError, match="atom 0 and its own periodic image are 0.4 Å apart"):
        calc.get_property(B, atoms)


def test_absurd_density_refused_before_the_neighbor_list(models) -> None:
    """2 atoms in a 1 Å box: ~1000 neighbors each (the LAMMPS case of the issue)."""
    calc = SymGNNCalculator(models["equivariant"])
    atoms = Atoms("CuZr", positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=[1.0] * 3, pbc=True)
    with pytest.raises(
        ValueError,
        match=rf"2 atoms in a 1 Å\^3 cell: about 1047 neighbors.*at most {MAX_NEIGHBORS}",
    ):
        calc.get_property(B, atoms)


def test_dense_cluster_refused(models) -> None:
    """No cell to tell the density: the neighbor counts do."""
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(*[np.arange(9) * 0.55] * 3), -1).reshape(-1, 3)
    atoms = Atoms(["Cu"] * len(grid), positions=grid + rng.normal(0, 1e-3, grid.shape))
    calc = SymGNNCalculator(models["symgnn"])
    with pytest.raises(
        ValueError, match=rf"neighbors within r_max = 5 Å \(at most {MAX_NEIGHBORS}"
    ):
        calc.get_property(B, atoms)
