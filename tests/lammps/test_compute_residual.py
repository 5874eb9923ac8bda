"""A residual file (``symgnn residual BASE RUN``: a baseline and a network trained on what it
leaves, summed) in `compute symgnn`: on 1, 2 and 4 MPI ranks every atom's barrier is the ASE
calculator's within 1e-5 eV (docs/contracts.md, Determinism), and the network's part is really
there (the sum is not the baseline alone)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ..python.train.helpers import run_config, write_config, write_labelled_glasses
from .helpers import TYPE_NAMES, glass, input_header, read_dump, reference_barriers, write_data

TOL = 1e-5  # eV
NET = {"kind": "length", "node_dim": 8, "edge_dim": 8, "heads": [2, 2, 1, 1], "decoder_dim": 8}


@pytest.fixture(scope="module")
def residual(tmp_path_factory) -> tuple[Path, Path]:
    """(the residual file, its baseline): a tiny SchNet baseline and a tiny edge-length network
    trained for 3 epochs on its remainder (``data.baseline``)."""
    from symgnn_ase.compose.residual import export_residual
    from symgnn_ase.export import load_model
    from symgnn_ase.testing import make_tiny_model
    from symgnn_ase.train import train

    folder = tmp_path_factory.mktemp("residual")
    (folder / "data").mkdir()
    write_labelled_glasses(folder / "data", 3, 90, seed=60)
    base = folder / "base.pt"
    make_tiny_model(base, kind="schnet", seed=7)
    cfg = run_config(folder / "data", folder / "run", NET, {"epochs": 3, "lr": 3e-3}, seed=2)
    cfg["data"]["baseline"] = str(base)
    run = train(write_config(folder / "res.yaml", cfg), progress=False)
    out = export_residual(base, [run], folder / "residual.pt")
    assert load_model(out).info["kind"] == "residual"
    return out, base


def test_residual_file_on_1_2_4_ranks_is_the_calculator(lammps, residual, tmp_path):
    from ase import Atoms

    from symgnn_ase.calculator import BARRIERS, SymGNNCalculator

    model, base = residual
    positions, types, cell = glass(300, seed=21, tilt=(0.8, -0.4, 0.2))
    atoms = Atoms([TYPE_NAMES[t - 1] for t in types], positions=positions, cell=cell, pbc=True)
    ase_barriers = SymGNNCalculator(str(model)).get_property(BARRIERS, atoms)
    base_only = reference_barriers(base, positions, types, cell)
    part = float(np.max(np.abs(ase_barriers - base_only)))
    print(f"the network's part: up to {part:.3g} eV")
    assert part > 1e-3  # the sum is not the baseline alone
    results = {}
    for nprocs in (1, 2, 4):
        run_dir = tmp_path / f"np{nprocs}"
        run_dir.mkdir()
        write_data(run_dir / "glass.data", positions, types, cell)
        text = input_header("glass.data") + f"compute b all symgnn {model} Cu Zr\n"
        text += "dump d all custom 1 dump.txt id type c_b\n"
        text += "dump_modify d format float %.17g sort id\nrun 0\n"
        lammps.run(text, run_dir, np=nprocs).check()
        (frame,) = read_dump(run_dir / "dump.txt")
        assert np.array_equal(frame.columns["id"], np.arange(1, len(types) + 1))
        got = frame.columns["c_b"]
        err = float(np.max(np.abs(got - ase_barriers)))
        print(f"{nprocs} rank(s): max |LAMMPS - ASE| {err:.3g} eV")
        assert err <= TOL, f"{nprocs} rank(s): LAMMPS and ASE differ by {err:.3g} eV"
        results[nprocs] = got
    for nprocs in (2, 4):
        diff = float(np.max(np.abs(results[nprocs] - results[1])))
        assert diff <= TOL, f"{nprocs} ranks and 1 rank differ by {diff:.3g} eV"
