"""`compute symgnn` stops, naming the atoms, on what no model was trained on and on a non-finite
result: a model whose output is NaN, two coincident atoms, an absurd density (the issue's case:
2 atoms in a 1 A box), one rank or several; a plain glass passes the same checks."""

from __future__ import annotations

import numpy as np
import pytest

from .helpers import glass, input_header, write_data


@pytest.fixture(scope="module")
def nan_models(tmp_path_factory):
    from symgnn_ase.testing import make_nan_model

    folder = tmp_path_factory.mktemp("nan_models")
    out = {}
    for kind in ("symgnn", "equivariant"):
        make_nan_model(folder / f"nan_{kind}.pt", kind)
        out[kind] = folder / f"nan_{kind}.pt"
    return out


def _fails(lammps, cwd, structure, model, *expected: str, nprocs: int = 1) -> str:
    """`compute symgnn` of ``model`` on ``structure`` (positions, types, cell; summed in the
    thermo output) stops with an error naming every ``expected`` text; the output."""
    write_data(cwd / "glass.data", *structure)
    compute = f"compute b all symgnn {model} Cu Zr\ncompute s all reduce sum c_b"
    text = input_header("glass.data") + compute + "\nthermo_style custom step c_s\nrun 0\n"
    return lammps.run(text, cwd, np=nprocs, timeout=120).check_error(*expected)


@pytest.mark.parametrize("kind", ["symgnn", "equivariant"])
@pytest.mark.parametrize("nprocs", [1, 2])
def test_non_finite_output_is_an_error(lammps, nan_models, tmp_path, kind, nprocs):
    out = _fails(
        lammps,
        tmp_path,
        glass(100, seed=21),
        nan_models[kind],
        "compute symgnn: the model returned non-finite barriers for",
        "first atom ids ",
        nprocs=nprocs,
    )
    assert "-nan" not in out.split("ERROR")[0].splitlines()[-1]


def test_coincident_atoms(lammps, tiny_models, tmp_path):
    positions, types, cell = glass(100, seed=22)
    positions = positions.copy()
    positions[41] = positions[17] + [0.2, 0.0, 0.0]  # LAMMPS ids 18 and 42
    out = _fails(
        lammps,
        tmp_path,
        (positions, types, cell),
        tiny_models["symgnn"],
        "A apart (closer than 0.5 A): coincident or overlapping atoms",
    )
    assert "atoms 18 and 42 are 0.2 A apart" in out or "atoms 42 and 18 are 0.2 A apart" in out


def test_absurd_density(lammps, tiny_models, tmp_path):
    """The issue's case: 2 atoms in a 1 A box gave c_b = -nan for every atom with exit 0."""
    dense = (np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]), np.array([1, 2]), np.eye(3))
    _fails(
        lammps,
        tmp_path,
        dense,
        tiny_models["equivariant"],
        "compute symgnn: 2 atoms in a 1 A^3 box: about 1047 neighbors per atom",
        "(at most 500 allowed",
    )
