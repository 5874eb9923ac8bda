"""``symgnn predict``: end to end on extxyz, LAMMPS data/dump, POSCAR and CIF inputs."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms

from symgnn_ase import SymGNNCalculator
from symgnn_ase.cli import main
from symgnn_ase.data.io import guess_format
from symgnn_ase.testing import random_glass

B = "energy_barriers"


@pytest.fixture(scope="module")
def calc(tiny_model: str) -> SymGNNCalculator:
    return SymGNNCalculator(tiny_model)


def _frames() -> list[Atoms]:
    slab = random_glass(24, seed=2)
    slab.pbc = [True, True, False]
    cluster = Atoms(
        random_glass(12, seed=3).get_chemical_symbols(), random_glass(12, seed=3).positions
    )
    return [random_glass(30, seed=1), slab, cluster]


def _predict(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(["predict", "--no-progress", *args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _predict_frames(
    frames: list[Atoms], model: str, tmp_path: Path, capsys, *extra: str
) -> tuple[int, str, str, Path, Path]:
    """``frames`` written to tmp_path/traj.extxyz and predicted into tmp_path/pred.xyz: return
    code, stdout, stderr, input and output file."""
    src = tmp_path / "traj.extxyz"
    ase.io.write(src, frames)
    out = tmp_path / "pred.xyz"
    rc, stdout, err = _predict(["--model", model, *extra, str(src), "-o", str(out)], capsys)
    return rc, stdout, err, src, out


def test_extxyz_trajectory(tiny_model: str, calc: SymGNNCalculator, tmp_path: Path, capsys) -> None:
    frames = _frames()
    rc, stdout, _, src, out = _predict_frames(frames, tiny_model, tmp_path, capsys)
    assert rc == 0
    lines = stdout.strip().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("wrote 3 frame(s), 66 atoms")
    assert lines[0].startswith(f"{src}[0]: 30 atoms, barrier mean ")
    for word in ("std", "min", "max", "eV", " s"):
        assert word in lines[1]
    result = ase.io.read(out, ":")
    assert len(result) == 3
    for got, ref in zip(result, frames, strict=True):
        np.testing.assert_allclose(got.positions, ref.positions, atol=1e-8)
        assert got.pbc.tolist() == ref.pbc.tolist()
        np.testing.assert_allclose(
            got.arrays["energy_barrier"], calc.get_property(B, ref), atol=1e-7
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.xyz", "traj.extxyz"]


def test_label_name_index_and_existing_label(tiny_model: str, tmp_path: Path, capsys) -> None:
    frames = _frames()[:2]
    for atoms in frames:
        atoms.arrays["energy_barrier"] = np.linspace(1.0, 2.0, len(atoms))  # "true" labels
    src = tmp_path / "labelled.xyz"
    ase.io.write(src, frames)
    out = tmp_path / "last.xyz"
    rc, stdout, _ = _predict(
        ["--model", tiny_model, "--index", "-1", "--label-name", "pred", str(src), "-o", str(out)],
        capsys,
    )
    assert rc == 0 and "wrote 1 frame(s)" in stdout
    (last,) = ase.io.read(out, ":")
    assert len(last) == len(frames[1]) and "pred" in last.arrays
    np.testing.assert_allclose(last.arrays["energy_barrier"], frames[1].arrays["energy_barrier"])

    out2 = tmp_path / "kept.xyz"
    rc, stdout, _ = _predict(["--model", tiny_model, str(src), "-o", str(out2)], capsys)
    assert rc == 0 and "pearson r vs label `energy_barrier`" in stdout
    assert "written as `energy_barrier_pred`" in stdout
    first = ase.io.read(out2, 0)
    labels = ase.io.read(src, 0).arrays["energy_barrier"]  # as stored (8 decimals)
    # the label keeps its name and values; the prediction has its own column
    np.testing.assert_array_equal(first.arrays["energy_barrier"], labels)
    assert first.info["symgnn_predictions"] == "energy_barrier_pred"
    pred = first.arrays["energy_barrier_pred"]

    # predicting again on that output: the old prediction is replaced, the labels are kept, the
    # Pearson is against the labels (never against the earlier prediction)
    out3 = tmp_path / "again.xyz"
    rc, stdout, _ = _predict(["--model", tiny_model, str(out2), "-o", str(out3)], capsys)
    assert rc == 0 and stdout.count("pearson r vs label `energy_barrier`") == 2, stdout
    again = ase.io.read(out3, 0)
    np.testing.assert_array_equal(again.arrays["energy_barrier"], labels)
    np.testing.assert_allclose(again.arrays["energy_barrier_pred"], pred, rtol=0, atol=1e-7)
    assert sorted(k for k in again.arrays if k.startswith("energy")) == [
        "energy_barrier",
        "energy_barrier_pred",
    ]


def test_output_of_an_unlabelled_prediction_is_not_a_label(tiny_model, tmp_path, capsys) -> None:
    src = tmp_path / "plain.xyz"
    ase.io.write(src, random_glass(20, seed=5))
    once, twice = tmp_path / "once.xyz", tmp_path / "twice.xyz"
    assert _predict(["--model", tiny_model, str(src), "-o", str(once)], capsys)[0] == 0
    rc, stdout, _ = _predict(["--model", tiny_model, str(once), "-o", str(twice)], capsys)
    assert rc == 0 and "pearson" not in stdout and "written as" not in stdout
    got = ase.io.read(twice)
    assert sorted(k for k in got.arrays if k.startswith("energy")) == ["energy_barrier"]


def test_legacy_output_keeps_its_label(tiny_model, tmp_path, capsys) -> None:
    """A file written before predictions were marked: `energy_barrier` is the old prediction,
    `energy_barrier_input` the label; the label is kept and is what the Pearson uses."""
    atoms = random_glass(20, seed=6)
    atoms.arrays["energy_barrier"] = np.full(len(atoms), 9.0)
    atoms.arrays["energy_barrier_input"] = np.linspace(1.0, 2.0, len(atoms))
    src = tmp_path / "legacy.xyz"
    ase.io.write(src, atoms)
    out = tmp_path / "new.xyz"
    rc, stdout, _ = _predict(["--model", tiny_model, str(src), "-o", str(out)], capsys)
    assert rc == 0 and "pearson r vs label `energy_barrier_input`" in stdout
    got = ase.io.read(out)
    np.testing.assert_array_equal(
        got.arrays["energy_barrier_input"], ase.io.read(src).arrays["energy_barrier_input"]
    )
    assert np.all(got.arrays["energy_barrier"] != 9.0)


def test_lammps_data(tiny_model: str, calc: SymGNNCalculator, tmp_path: Path, capsys) -> None:
    atoms = random_glass(40, seed=4)
    with_masses = tmp_path / "glass.data"
    ase.io.write(with_masses, atoms, format="lammps-data", masses=True, specorder=["Cu", "Zr"])
    no_masses = tmp_path / "bare.lmp"
    ase.io.write(no_masses, atoms, format="lammps-data", specorder=["Cu", "Zr"])
    assert guess_format(with_masses) == guess_format(no_masses) == "lammps-data"
    out = tmp_path / "data.xyz"
    rc, stdout, _ = _predict(["--model", tiny_model, str(with_masses), "-o", str(out)], capsys)
    assert rc == 0, stdout
    ref = calc.get_property(B, atoms)
    np.testing.assert_allclose(ase.io.read(out).arrays["energy_barrier"], ref, atol=1e-7)
    rc, _, err = _predict(["--model", tiny_model, str(no_masses), "-o", str(out)], capsys)
    assert rc == 2 and "--types" in err and "`H`" in err
    rc, _, _ = _predict(
        ["--model", tiny_model, "--types", "Cu,Zr", str(no_masses), "-o", str(out)], capsys
    )
    assert rc == 0
    np.testing.assert_allclose(ase.io.read(out).arrays["energy_barrier"], ref, atol=1e-7)


def _write_dump(path: Path, frames: list[Atoms]) -> None:
    lines = []
    for step, atoms in enumerate(frames):
        lengths = atoms.cell.lengths()
        lines += ["ITEM: TIMESTEP", str(step * 100), "ITEM: NUMBER OF ATOMS", str(len(atoms))]
        lines += ["ITEM: BOX BOUNDS pp pp pp"] + [f"0.0 {x:.10f}" for x in lengths]
        lines.append("ITEM: ATOMS id type x y z")
        for k, (z, pos) in enumerate(zip(atoms.numbers, atoms.positions, strict=True)):
            lines.append(f"{k + 1} {1 if z == 29 else 2} {pos[0]:.10f} {pos[1]:.10f} {pos[2]:.10f}")
    path.write_text("\n".join(lines) + "\n")


def test_lammps_dump_frames(
    tiny_model: str, calc: SymGNNCalculator, tmp_path: Path, capsys
) -> None:
    frames = [random_glass(20, seed=s) for s in (6, 7)]
    dump = tmp_path / "md.lammpstrj"
    _write_dump(dump, frames)
    out = tmp_path / "dump.xyz"
    rc, stdout, _ = _predict(
        ["--model", tiny_model, "--types", "Cu,Zr", str(dump), "-o", str(out)], capsys
    )
    assert rc == 0 and "wrote 2 frame(s)" in stdout
    for got, ref in zip(ase.io.read(out, ":"), frames, strict=True):
        assert got.get_chemical_symbols() == ref.get_chemical_symbols()
        np.testing.assert_allclose(
            got.arrays["energy_barrier"], calc.get_property(B, ref), atol=1e-6
        )


def test_poscar_and_cif_together(tiny_model: str, tmp_path: Path, capsys) -> None:
    atoms = random_glass(16, seed=8)
    ase.io.write(tmp_path / "POSCAR", atoms, format="vasp")
    ase.io.write(tmp_path / "glass.cif", atoms)
    out = tmp_path / "both.xyz"
    rc, stdout, _ = _predict(
        [
            "--model",
            tiny_model,
            str(tmp_path / "POSCAR"),
            str(tmp_path / "glass.cif"),
            "-o",
            str(out),
        ],
        capsys,
    )
    assert rc == 0 and "wrote 2 frame(s), 32 atoms" in stdout
    a, b = ase.io.read(out, ":")
    np.testing.assert_allclose(a.arrays["energy_barrier"], b.arrays["energy_barrier"], atol=1e-5)


def test_errors(tiny_model: str, tmp_path: Path, capsys) -> None:
    src = tmp_path / "one.xyz"
    ase.io.write(src, random_glass(10, seed=9))
    out = tmp_path / "out.xyz"
    rc, _, err = _predict(
        ["--model", tiny_model, str(tmp_path / "missing.xyz"), "-o", str(out)], capsys
    )
    assert rc == 2 and "input file not found" in err
    rc, _, err = _predict(["--model", str(tmp_path / "nope.pt"), str(src), "-o", str(out)], capsys)
    assert rc == 2 and "model file not found" in err
    rc, _, err = _predict(
        ["--model", tiny_model, "--label-name", "my barrier", str(src), "-o", str(out)], capsys
    )
    assert rc == 2 and "--label" in err
    rc, _, err = _predict(["--model", tiny_model, str(src), "-o", str(src)], capsys)
    assert rc == 2 and "also an input" in err
    rc, _, err = _predict(
        ["--model", tiny_model, "--types", "Cu,Zr", str(src), "-o", str(out)], capsys
    )
    assert rc == 2 and "LAMMPS" in err
    bad = tmp_path / "nickel.xyz"
    ase.io.write(bad, Atoms("Ni2", positions=[[0, 0, 0], [2.5, 0, 0]]))
    rc, _, err = _predict(["--model", tiny_model, str(src), str(bad), "-o", str(out)], capsys)
    assert rc == 2 and "nickel.xyz frame 0" in err and "[Cu, Zr]" in err
    assert len(ase.io.read(out, ":")) == 1  # the good frame of one.xyz is kept
    out.unlink()
    rc, _, err = _predict(
        ["--model", tiny_model, "--strict", str(src), str(bad), "-o", str(out)], capsys
    )
    assert rc == 2 and "nickel.xyz frame 0" in err and "[Cu, Zr]" in err
    assert not out.exists() and not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_console_script(tiny_model: str, tmp_path: Path) -> None:
    src = tmp_path / "g.xyz"
    ase.io.write(src, [random_glass(12, seed=s) for s in range(2)])
    out = tmp_path / "g_pred.xyz"
    exe = Path(sys.executable).with_name("symgnn")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "symgnn_ase"]
    proc = subprocess.run(
        [*cmd, "predict", "--model", tiny_model, str(src), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(" atoms, barrier mean ") == 2
    assert len(ase.io.read(out, ":")) == 2


def _bad_trajectory() -> list[Atoms]:
    """Five frames; frame 2 has a NaN position and frame 3 two coincident atoms."""
    frames = [random_glass(20, seed=10 + s) for s in range(5)]
    frames[2].positions[4] = np.nan
    frames[3].positions[7] = frames[3].positions[6]
    return frames


def test_bad_frames_are_reported_and_good_frames_kept(tiny_model, calc, tmp_path, capsys) -> None:
    frames = _bad_trajectory()
    rc, stdout, err, src, out = _predict_frames(frames, tiny_model, tmp_path, capsys)
    assert rc == 2
    assert f"skipped {src} frame 2: positions are not finite" in err
    assert f"skipped {src} frame 3:" in err and "apart" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("symgnn predict: error: 2 frame(s) failed and were left out of")
    assert "holds the 3 good frame(s)" in last
    assert "wrote 3 frame(s)" in stdout
    got = ase.io.read(out, ":")
    assert len(got) == 3
    for g, ref in zip(got, [frames[0], frames[1], frames[4]], strict=True):
        np.testing.assert_allclose(g.positions, ref.positions, atol=1e-8)
        np.testing.assert_allclose(g.arrays["energy_barrier"], calc.get_property(B, ref), atol=1e-7)


def test_strict_stops_at_the_first_bad_frame(tiny_model, tmp_path, capsys) -> None:
    rc, _, err, src, out = _predict_frames(
        _bad_trajectory(), tiny_model, tmp_path, capsys, "--strict"
    )
    assert rc == 2 and f"{src} frame 2: positions are not finite" in err and "--strict" in err
    assert "frame 3" not in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["traj.extxyz"]


def test_every_frame_bad_writes_nothing(tiny_model, tmp_path, capsys) -> None:
    src = tmp_path / "bad.xyz"
    atoms = random_glass(10, seed=1)
    atoms.positions[0] = np.inf
    ase.io.write(src, atoms)
    out = tmp_path / "out.xyz"
    out.write_text("previous result\n")
    rc, _, err = _predict(["--model", tiny_model, str(src), "-o", str(out)], capsys)
    assert rc == 2 and "every frame failed, nothing written" in err
    assert out.read_text() == "previous result\n"


def test_unreadable_rest_of_a_file(tiny_model, tmp_path, capsys) -> None:
    """A trajectory cut in the middle of its third frame: two frames written, the file named."""
    src = tmp_path / "cut.xyz"
    ase.io.write(src, [random_glass(12, seed=s) for s in range(3)])
    lines = src.read_text().splitlines()
    src.write_text("\n".join(lines[: 2 * 14 + 5]) + "\n")
    out = tmp_path / "out.xyz"
    rc, stdout, err = _predict(["--model", tiny_model, str(src), "-o", str(out)], capsys)
    assert rc == 2 and "wrote 2 frame(s)" in stdout
    assert f"skipped {src}: reading stopped after frame 1" in err
    assert len(ase.io.read(out, ":")) == 2


@pytest.mark.parametrize("case", ["dev_null", "user_tmp", "input_tmp", "symlink", "fifo", "dir"])
def test_output_targets(tiny_model, tmp_path, capsys, case) -> None:
    src = tmp_path / "in.xyz"
    ase.io.write(src, random_glass(12, seed=3))
    args = ["--model", tiny_model, str(src)]
    if case == "dev_null":
        # as root the old writer replaced the /dev/null device with a regular file
        rc, _, err = _predict([*args, "-o", "/dev/null"], capsys)
        assert rc == 2 and "/dev/null is a device" in err
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    elif case == "user_tmp":
        mine = tmp_path / "out.xyz.tmp"
        mine.write_text("the user's own file")
        assert _predict([*args, "-o", str(tmp_path / "out.xyz")], capsys)[0] == 0
        assert mine.read_text() == "the user's own file"
    elif case == "input_tmp":
        # input X.tmp, output X: the old writer truncated and deleted the input
        x_tmp = tmp_path / "X.tmp"
        ase.io.write(x_tmp, random_glass(12, seed=4), format="extxyz")
        before = x_tmp.read_bytes()
        rc, _, _ = _predict(
            ["--model", tiny_model, "--format", "extxyz", str(x_tmp), "-o", str(tmp_path / "X")],
            capsys,
        )
        assert rc == 0 and x_tmp.read_bytes() == before
        assert len(ase.io.read(tmp_path / "X", format="extxyz").arrays["energy_barrier"]) == 12
    elif case == "symlink":
        real = tmp_path / "real.xyz"
        real.write_text("kept")
        link = tmp_path / "link.xyz"
        link.symlink_to(real)
        rc, _, err = _predict([*args, "-o", str(link)], capsys)
        assert rc == 2 and f"{link} is a symbolic link" in err
        assert link.is_symlink() and real.read_text() == "kept"
    elif case == "fifo":
        fifo = tmp_path / "pipe"
        os.mkfifo(fifo)
        rc, _, err = _predict([*args, "-o", str(fifo)], capsys)
        assert rc == 2 and f"{fifo} is a FIFO" in err
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    else:
        folder = tmp_path / "folder"
        folder.mkdir()
        rc, stdout, err = _predict([*args, "-o", str(folder)], capsys)
        assert rc == 2 and f"{folder} is a directory" in err
        assert stdout == ""  # refused before any frame was predicted
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_output_equal_to_the_model_is_refused(tiny_model, tmp_path, capsys) -> None:
    src = tmp_path / "in.xyz"
    ase.io.write(src, random_glass(12, seed=3))
    before = Path(tiny_model).read_bytes()
    rc, _, err = _predict(["--model", tiny_model, str(src), "-o", tiny_model], capsys)
    assert rc == 2 and "is also an input" in err
    assert Path(tiny_model).read_bytes() == before
