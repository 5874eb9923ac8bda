"""`compute symgnn ens.pt Cu Zr std yes`: an ensemble file gives a per-atom array (mean, std),
the same on 1, 2 and 4 MPI ranks and the same as the ASE calculator; without `std` the mean."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from .helpers import glass, input_header, read_dump, write_data

TOL_RANKS = 1e-6  # eV: 1 rank vs N ranks
TOL_ASE = 1e-5  # eV: LAMMPS vs the ASE calculator


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    """Three tiny members of three kinds (the equivariant one has 3 layers, the others 4)."""
    from symgnn_ase.compose.ensemble import export_ensemble
    from symgnn_ase.testing import make_tiny_members

    folder = tmp_path_factory.mktemp("ensemble")
    members = make_tiny_members(folder, seed=10)
    out = folder / "ens.pt"
    export_ensemble(members, out)
    return out, members


def _ase_reference(model, frame):
    from symgnn_ase.calculator import BARRIER_STD, BARRIERS, SymGNNCalculator

    c = frame.columns
    positions = np.stack([c["x"], c["y"], c["z"]], 1) - frame.origin
    symbols = ["Cu" if t == 1 else "Zr" for t in c["type"]]
    atoms = Atoms(symbols=symbols, positions=positions, cell=frame.cell, pbc=True)
    calc = SymGNNCalculator(str(model))
    return calc.get_property(BARRIERS, atoms), calc.get_property(BARRIER_STD, atoms)


def _run(lammps, folder, model, nprocs, group_line="", group="all"):
    positions, types, cell = glass(300, seed=11, tilt=(1.3, -0.7, 0.4))
    write_data(folder / "glass.data", positions, types, cell)
    text = input_header("glass.data") + group_line
    text += f"compute b {group} symgnn {model} Cu Zr std yes\n"
    text += f"compute m {group} symgnn {model} Cu Zr\n"
    text += "dump d all custom 1 dump.txt id type x y z c_b[1] c_b[2] c_m\n"
    text += "dump_modify d format float %.17g sort id\nrun 0\n"
    res = lammps.run(text, folder, np=nprocs).check()
    assert "ensemble of 3 models" in res.output
    return read_dump(folder / "dump.txt")[0]


def test_mean_and_std_across_ranks_and_against_ase(lammps, plugin_so, ensemble, tmp_path):
    model, _ = ensemble
    frames = {}
    for nprocs in (1, 2, 4):
        folder = tmp_path / f"np{nprocs}"
        folder.mkdir()
        frames[nprocs] = _run(lammps, folder, model, nprocs)
    one = frames[1].columns
    mean_ref, std_ref = _ase_reference(model, frames[1])
    assert np.all(one["c_b[2]"] > 0)
    # the vector form is the mean column
    assert np.array_equal(one["c_m"], one["c_b[1]"])
    err_mean = np.abs(one["c_b[1]"] - mean_ref).max()
    err_std = np.abs(one["c_b[2]"] - std_ref).max()
    print(f"1 rank vs ASE: mean {err_mean:.3g} eV, std {err_std:.3g} eV")
    assert err_mean <= TOL_ASE and err_std <= TOL_ASE
    for nprocs in (2, 4):
        cols = frames[nprocs].columns
        for name in ("c_b[1]", "c_b[2]", "c_m"):
            err = np.abs(cols[name] - one[name]).max()
            print(f"{nprocs} ranks vs 1: {name} {err:.3g} eV")
            assert err <= TOL_RANKS, (nprocs, name, err)


def test_members_alone_give_the_ensemble_numbers(lammps, plugin_so, ensemble, tmp_path):
    """Each member run as its own compute: their mean and sample std are the ensemble's."""
    model, members = ensemble
    positions, types, cell = glass(200, seed=12)
    write_data(tmp_path / "glass.data", positions, types, cell)
    text = input_header("glass.data")
    text += f"compute b all symgnn {model} Cu Zr std yes\n"
    cols = ["c_b[1]", "c_b[2]"]
    for k, path in enumerate(members):
        text += f"compute m{k} all symgnn {path} Cu Zr\n"
        cols.append(f"c_m{k}")
    text += f"dump d all custom 1 dump.txt id type x y z {' '.join(cols)}\n"
    text += "dump_modify d format float %.17g sort id\nrun 0\n"
    lammps.run(text, tmp_path, np=2).check()
    c = read_dump(tmp_path / "dump.txt")[0].columns
    each = np.stack([c[f"c_m{k}"] for k in range(len(members))])
    assert np.abs(c["c_b[1]"] - each.mean(0)).max() <= 1e-6
    assert np.abs(c["c_b[2]"] - each.std(0, ddof=1)).max() <= 1e-6


def test_group_zeroes_both_columns(lammps, plugin_so, ensemble, tmp_path):
    model, _ = ensemble
    frame = _run(lammps, tmp_path, model, 2, group_line="group cu type 1\n", group="cu")
    c = frame.columns
    zr = c["type"] == 2
    assert np.all(c["c_b[1]"][zr] == 0) and np.all(c["c_b[2]"][zr] == 0)
    assert np.all(c["c_b[2]"][~zr] > 0)


def test_std_needs_an_ensemble_and_a_yes_or_no(lammps, plugin_so, ensemble, tmp_path):
    model, members = ensemble
    positions, types, cell = glass(100, seed=13)
    write_data(tmp_path / "glass.data", positions, types, cell)
    single = input_header("glass.data") + f"compute b all symgnn {members[0]} Cu Zr std yes\n"
    res = lammps.run(single, tmp_path)
    assert res.returncode != 0
    assert "`std yes` needs an ensemble file" in res.output
    bad = input_header("glass.data") + f"compute b all symgnn {model} Cu Zr std maybe\n"
    res = lammps.run(bad, tmp_path)
    assert res.returncode != 0
    assert "keyword `std` needs `yes` or `no`, got `maybe`" in res.output
    # device and std in either order
    both = input_header("glass.data") + f"compute b all symgnn {model} Cu Zr std no device cpu\n"
    both += "run 0\n"
    lammps.run(both, tmp_path).check()
