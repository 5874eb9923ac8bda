"""examples/lammps/in.quench: inherent-structure barriers at intervals during NVT MD.

The quench blocks (save the exact state, minimize, barriers of the minimum, restore) must leave the
MD trajectory as it is without them, and the barriers LAMMPS writes for each minimized structure
must be SymGNNCalculator's on that structure. A small minimized glass, three blocks of a few steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .helpers import TYPE_NAMES, default_model_or, read_dump, write_atoms_data

ROOT = Path(__file__).resolve().parents[2]
IN_QUENCH = ROOT / "examples" / "lammps" / "in.quench"
N_BLOCK, N_BLOCKS, N_DUMP = 40, 3, 20
TOL = 1e-5  # eV, LAMMPS vs the calculator on the same structure


@pytest.fixture(scope="module")
def setup(tmp_path_factory, request):
    """(folder with glass.data, potential, model argument for the compute, model path)."""
    from symgnn_ase.potential.eam import lammps_potential_path
    from symgnn_ase.potential.quench import QuenchSettings, quench_lammps
    from symgnn_ase.testing import random_glass

    potential = lammps_potential_path("CuZr_mm.eam.fs")
    glass = quench_lammps(random_glass(160, seed=21), potential, QuenchSettings(1e-3, 2000))
    glass.wrap()
    folder = tmp_path_factory.mktemp("quench_glass")
    write_atoms_data(folder / "glass.data", glass)
    model_arg, model_path = default_model_or(
        lambda: request.getfixturevalue("tiny_models")["symgnn"]
    )
    return folder, potential, model_arg, model_path


def _run(lammps, setup, cwd: Path, mode: str, np_: int = 1):
    folder, potential, model_arg, _ = setup
    values = {
        "potential": potential,
        "model": model_arg,
        "data": folder / "glass.data",
        "mode": mode,
        "n_block": N_BLOCK,
        "n_blocks": N_BLOCKS,
        "n_dump": N_DUMP,
        "out": "out",
    }
    # index variables defined first win over the input's own defaults (like -var)
    head = "".join(f"variable {k} index {v}\n" for k, v in values.items())
    # seconds of CPU; the generous timeout is for a machine shared with training jobs
    return lammps.run(head + IN_QUENCH.read_text(), cwd, np=np_, timeout=900).check()


def _state(path: Path) -> dict[str, np.ndarray]:
    """The final state, wrapped into the box as LAMMPS's Domain::pbc does at the start of a run.

    The quench run put its last saved state back with read_dump, which wraps atoms into the box
    (and adjusts their image flags); the run without quenches leaves atoms that crossed a face
    since the last neighbor-list build outside it. Both are the same state, so compare them wrapped.
    """
    (frame,) = read_dump(path)
    c = dict(frame.columns)
    lo = frame.origin
    for d, (x, i) in enumerate((("x", "ix"), ("y", "iy"), ("z", "iz"))):
        hi = lo[d] + frame.cell[d, d]  # orthogonal box
        period = hi - lo[d]
        pos, img = c[x].copy(), c[i].copy()
        below = pos < lo[d]
        pos[below] += period
        img[below] -= 1
        above = pos >= hi
        pos[above] = np.maximum(pos[above] - period, lo[d])
        img[above] += 1
        c[x], c[i] = pos, img
    return c


def _both(lammps, setup, folder: Path, nprocs: int) -> dict[str, Path]:
    """The same MD with quench blocks and with the plain compute instead; their out/ folders."""
    outs = {}
    for mode in ("quench", "plain"):
        (folder / mode).mkdir()
        result = _run(lammps, setup, folder / mode, mode, nprocs)
        restored = result.output.count("MD state restored")
        assert restored == (N_BLOCKS if mode == "quench" else 0), result.output[-3000:]
        outs[mode] = folder / mode / "out"
    return outs


@pytest.fixture(scope="module")
def one_rank(lammps, setup, tmp_path_factory) -> dict[str, Path]:
    return _both(lammps, setup, tmp_path_factory.mktemp("quench_1rank"), 1)


@pytest.mark.parametrize("nprocs", [1, 2])
def test_quench_blocks_leave_the_md_trajectory(lammps, setup, one_rank, tmp_path, nprocs):
    outs = one_rank if nprocs == 1 else _both(lammps, setup, tmp_path, nprocs)
    q = _state(outs["quench"] / "final_state.dump")
    plain = _state(outs["plain"] / "final_state.dump")
    assert q["id"].size == 160
    for name in ("ix", "iy", "iz", "type"):
        np.testing.assert_array_equal(q[name], plain[name], err_msg=name)
    for name in ("x", "y", "z", "vx", "vy", "vz"):
        if nprocs == 1:  # the same floating-point operations in the same order
            np.testing.assert_array_equal(q[name], plain[name], err_msg=name)
        else:  # atoms may come back to a rank in another order: round-off (seen: 2e-15 A)
            np.testing.assert_allclose(q[name], plain[name], rtol=0, atol=1e-9, err_msg=name)
    inherent = read_dump(outs["quench"] / "inherent_barriers.dump")
    assert [f.step for f in inherent] == [N_BLOCK * (k + 1) for k in range(N_BLOCKS)]
    # the MD trajectory dump, taken out around each quench and put back: every step once, the
    # same frames
    md = {mode: read_dump(outs[mode] / "md.dump") for mode in outs}
    steps = [f.step for f in md["quench"]]
    assert steps == list(range(0, N_BLOCK * N_BLOCKS + 1, N_DUMP))
    assert [f.step for f in md["plain"]] == steps
    for a, b in zip(md["quench"], md["plain"], strict=True):
        for name in ("x", "y", "z"):
            if nprocs == 1:
                np.testing.assert_array_equal(a.columns[name], b.columns[name])
            else:
                np.testing.assert_allclose(a.columns[name], b.columns[name], atol=1e-9)


def test_inherent_barriers_match_the_calculator(setup, one_rank):
    from ase import Atoms

    from symgnn_ase import SymGNNCalculator
    from symgnn_ase.potential.quench import QuenchSettings, quench_lammps

    _, potential, _, model_path = setup
    inherent = read_dump(one_rank["quench"] / "inherent_barriers.dump")
    thermal = {f.step: f for f in read_dump(one_rank["plain"] / "thermal_barriers.dump")}
    assert len(inherent) == N_BLOCKS
    # the plain compute also writes the starting glass (step 0); the same MD steps otherwise
    assert sorted(thermal) == [N_BLOCK * k for k in range(N_BLOCKS + 1)]
    calc = SymGNNCalculator(str(model_path))

    def atoms_of(frame) -> Atoms:
        c = frame.columns
        symbols = [TYPE_NAMES[int(t) - 1] for t in c["type"]]
        positions = np.stack([c["x"], c["y"], c["z"]], 1) - frame.origin
        return Atoms(symbols=symbols, positions=positions, cell=frame.cell, pbc=True)

    for frame in inherent:
        atoms = atoms_of(frame)
        got = frame.columns["c_b"]
        ref = calc.get_property("energy_barriers", atoms)
        np.testing.assert_allclose(got, ref, rtol=0, atol=TOL, err_msg=f"step {frame.step}")
        # a minimum reached from the MD snapshot of the same step: the atoms moved, and so did
        # the barriers (by ~0.08 eV at most here)
        snap = atoms_of(thermal[frame.step])
        d = (atoms.positions - snap.positions) @ np.linalg.inv(atoms.cell.array)
        moved = np.linalg.norm((d - np.round(d)) @ atoms.cell.array, axis=1)
        assert 0.02 < moved.max() < 1.5, moved.max()
        assert np.abs(got - thermal[frame.step].columns["c_b"]).max() > 1e-2
    # quench_lammps of the MD snapshot with the same tolerance finds the same minimum (the same
    # CG from the same start), so Python gets the same inherent-structure barriers
    last = inherent[-1]
    settings = QuenchSettings(fmax=1e-6 / np.sqrt(len(atoms)), max_steps=2000)
    copy = quench_lammps(atoms_of(thermal[last.step]), potential, settings)
    got = calc.get_property("energy_barriers", copy)
    np.testing.assert_allclose(last.columns["c_b"], got, rtol=0, atol=TOL)
