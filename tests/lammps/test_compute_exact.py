"""`compute symgnn` in the real `lmp` gives, for every atom, the barrier that the same model gives
when evaluated directly in Python on the whole periodic structure, on 1, 2 and 4 MPI ranks.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from .helpers import (
    frame_reference,
    glass,
    input_header,
    read_dump,
    reference_barriers,
    write_data,
)

TOL = 1e-5  # eV


def _dump_lines(computes: dict[str, str], every: int = 1, group: str = "all") -> str:
    cols = " ".join(f"c_{name}" for name in computes)
    lines = [f"compute {name} {group} symgnn {path} Cu Zr" for name, path in computes.items()]
    lines.append(f"dump d all custom {every} dump.txt id type x y z {cols}")
    lines.append("dump_modify d format float %.17g sort id")
    return "\n".join(lines) + "\n"


def _check_frames(cwd, computes: dict[str, str], min_frames: int = 1) -> float:
    frames = read_dump(cwd / "dump.txt")
    assert len(frames) >= min_frames
    worst = 0.0
    for frame in frames:
        for name, path in computes.items():
            ref = frame_reference(path, frame)
            got = frame.columns[f"c_{name}"]
            err = float(np.max(np.abs(got - ref)))
            print(f"{name} step {frame.step}: max |LAMMPS - Python| = {err:.3g} eV")
            assert err <= TOL, f"{name} at step {frame.step}: max |LAMMPS - Python| = {err:.3g} eV"
            worst = max(worst, err)
    return worst


@pytest.mark.parametrize("nprocs", [1, 2, 4])
def test_orthogonal_box(lammps, tiny_models, tmp_path, nprocs):
    positions, types, cell = glass(300, seed=1)
    write_data(tmp_path / "glass.data", positions, types, cell)
    computes = {"bs": str(tiny_models["symgnn"]), "be": str(tiny_models["equivariant"])}
    # a pair cutoff below r_max + skin: the compute must raise the ghost cutoff itself
    text = input_header("glass.data", "pair_style zero 2.0\npair_coeff * *")
    text += _dump_lines(computes) + "run 0\n"
    res = lammps.run(text, tmp_path, np=nprocs).check()
    assert "raising the ghost-atom cutoff" in res.output
    assert res.output.count("symgnn: model") == 2  # metadata printed once per compute (rank 0)
    _check_frames(tmp_path, computes)


@pytest.mark.parametrize("nprocs", [1, 2, 4])
def test_triclinic_box(lammps, tiny_models, tmp_path, nprocs):
    positions, types, cell = glass(300, seed=2, tilt=(3.1, -2.2, 1.7))
    write_data(tmp_path / "glass.data", positions, types, cell)
    computes = {"bs": str(tiny_models["symgnn"]), "be": str(tiny_models["equivariant"])}
    text = input_header("glass.data") + _dump_lines(computes) + "run 0\n"
    lammps.run(text, tmp_path, np=nprocs).check()
    _check_frames(tmp_path, computes)


@pytest.mark.parametrize("nprocs", [1, 4])
def test_box_tilting_during_run(lammps, tiny_models, tmp_path, nprocs):
    """fix deform tilts the box while fast atoms migrate between ranks and reneighbor."""
    positions, types, cell = glass(300, seed=3)
    write_data(tmp_path / "glass.data", positions, types, cell, triclinic=True)
    computes = {"bs": str(tiny_models["symgnn"]), "be": str(tiny_models["equivariant"])}
    # a soft repulsion below 2 A: without any force the fast atoms would fly through each
    # other, and the compute refuses atoms closer than 0.5 A
    text = input_header("glass.data", "pair_style soft 2.0\npair_coeff * * 20.0")
    text += "velocity all create 3000 4 loop geom\n"
    text += "fix 1 all nve\n"
    text += "fix 2 all deform 1 xy erate 0.8 yz erate -0.5 remap x\n"
    text += "timestep 0.002\n"
    text += _dump_lines(computes, every=40)
    text += "thermo 40\nrun 200\n"
    res = lammps.run(text, tmp_path, np=nprocs).check()
    builds = int(re.search(r"Neighbor list builds = (\d+)", res.output).group(1))
    assert builds >= 3, "atoms should have moved enough to reneighbor"
    frames = read_dump(tmp_path / "dump.txt")
    assert abs(frames[-1].cell[1, 0]) > 1.0, "the box should have tilted"
    _check_frames(tmp_path, computes, min_frames=6)


def test_empty_subdomain(lammps, tiny_models, tmp_path):
    """Atoms fill half the box: with 4 slabs along x two ranks own no atom at all."""
    positions, types, cell = glass(200, seed=4)
    cell = cell.copy()
    cell[0, 0] *= 2.0
    write_data(tmp_path / "glass.data", positions, types, cell)
    computes = {"bs": str(tiny_models["symgnn"]), "be": str(tiny_models["equivariant"])}
    text = input_header("glass.data").replace("read_data", "processors 4 1 1\nread_data")
    text += _dump_lines(computes) + "run 0\n"
    res = lammps.run(text, tmp_path, np=4).check()
    assert re.search(r"Nlocal:\s+\S+ ave\s+\S+ max\s+0 min", res.output), res.output[-2000:]
    _check_frames(tmp_path, computes)


def test_group_and_consumers(lammps, tiny_models, tmp_path):
    """0 outside the group; dump, compute reduce, variable atom and fix ave/atom all read the
    vector, and the model runs once per timestep however many of them ask."""
    positions, types, cell = glass(300, seed=5)
    write_data(tmp_path / "glass.data", positions, types, cell)
    model = str(tiny_models["symgnn"])
    text = input_header("glass.data")
    text += f"""group cu type 1
compute b cu symgnn {model} Cu Zr
compute s all reduce sum c_b
variable twice atom 2.0*c_b
fix a all ave/atom 1 1 10 c_b
thermo_style custom step c_s
thermo_modify format float %.15g
thermo 10
dump d all custom 10 dump.txt id type x y z c_b v_twice f_a
dump_modify d format float %.17g sort id
run 20
"""
    res = lammps.run(text, tmp_path, np=2, env={"SYMGNN_LAMMPS_DEBUG": "1"}).check()
    steps = [int(s) for s in re.findall(r"symgnn: evaluation \d+ at step (\d+)", res.output)]
    assert steps == [0, 10, 20], steps
    sums = [
        float(v) for v in re.findall(r"^\s+\d+\s+(-?\d+\.\d*(?:e[-+]?\d+)?)\s*$", res.output, re.M)
    ]
    frames = read_dump(tmp_path / "dump.txt")
    assert len(frames) == 3
    ref = reference_barriers(model, positions, types, cell)
    for frame, total in zip(frames, sums, strict=True):
        c = frame.columns
        cu = c["type"] == 1
        assert np.all(c["c_b"][~cu] == 0.0)
        assert np.max(np.abs(c["c_b"][cu] - ref[cu])) <= TOL
        np.testing.assert_allclose(c["v_twice"], 2 * c["c_b"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(c["f_a"], c["c_b"], rtol=0, atol=1e-12)
        assert total == pytest.approx(c["c_b"].sum(), rel=1e-9)


def test_tiled_communication(lammps, tiny_models, tmp_path):
    """comm_style tiled with recursive bisection on 3 ranks (not a brick grid)."""
    positions, types, cell = glass(300, seed=6)
    write_data(tmp_path / "glass.data", positions, types, cell)
    computes = {"bs": str(tiny_models["symgnn"])}
    text = input_header("glass.data").replace(
        "neighbor 1.0 bin", "neighbor 1.0 bin\ncomm_style tiled\nbalance 1.0 rcb"
    )
    text += _dump_lines(computes) + "run 0\n"
    lammps.run(text, tmp_path, np=3).check()
    _check_frames(tmp_path, computes)
