"""`compute symgnn s.pt Cu Zr std yes` with a smoothed ensemble (``symgnn smooth``): the
predictions are written into the node state, refreshed on ghost atoms by the exchange, and
averaged over the neighbours inside the model, so 1 and 2 MPI ranks and the ASE calculator give
the same mean and std."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from .helpers import glass, input_header, read_dump, write_data

TOL_RANKS = 1e-6  # eV: 1 rank vs N ranks
TOL_ASE = 1e-5  # eV: LAMMPS vs the ASE calculator


@pytest.fixture(scope="module")
def smoothed(tmp_path_factory):
    from symgnn_ase.ensemble import export_ensemble
    from symgnn_ase.smooth import export_smoothed
    from symgnn_ase.testing import make_tiny_members

    folder = tmp_path_factory.mktemp("smoothed")
    ens = folder / "ens.pt"
    export_ensemble(make_tiny_members(folder, ("length", "equivariant"), seed=60), ens)
    out = folder / "s.pt"
    # a long length, so that a ghost atom with a wrong prediction would show
    export_smoothed(ens, out, length=3.0)
    return out


def test_ranks_and_ase_agree(lammps, plugin_so, smoothed, tmp_path):
    from symgnn_ase.calculator import BARRIER_STD, BARRIERS, SymGNNCalculator

    positions, types, cell = glass(300, seed=17, tilt=(1.1, -0.5, 0.3))
    cols = {}
    for nprocs in (1, 2):
        folder = tmp_path / f"np{nprocs}"
        folder.mkdir()
        write_data(folder / "glass.data", positions, types, cell)
        text = input_header("glass.data")
        text += f"compute b all symgnn {smoothed} Cu Zr std yes\n"
        text += "dump d all custom 1 dump.txt id type x y z c_b[1] c_b[2]\n"
        text += "dump_modify d format float %.17g sort id\nrun 0\n"
        lammps.run(text, folder, np=nprocs).check()
        cols[nprocs] = read_dump(folder / "dump.txt")[0]
    frame = cols[1]
    c = frame.columns
    atoms = Atoms(
        symbols=["Cu" if t == 1 else "Zr" for t in c["type"]],
        positions=np.stack([c["x"], c["y"], c["z"]], 1) - frame.origin,
        cell=frame.cell,
        pbc=True,
    )
    calc = SymGNNCalculator(str(smoothed))
    mean, std = calc.get_property(BARRIERS, atoms), calc.get_property(BARRIER_STD, atoms)
    err = max(np.abs(c["c_b[1]"] - mean).max(), np.abs(c["c_b[2]"] - std).max())
    print(f"1 rank vs ASE: {err:.3g} eV")
    assert err <= TOL_ASE
    for name in ("c_b[1]", "c_b[2]"):
        diff = np.abs(cols[2].columns[name] - c[name]).max()
        print(f"2 ranks vs 1: {name} {diff:.3g} eV")
        assert diff <= TOL_RANKS
