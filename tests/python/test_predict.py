"""``symgnn predict``: end to end on extxyz, LAMMPS data/dump, POSCAR and CIF inputs."""

from __future__ import annotations

import os
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
from symgnn_ase.testing import make_tiny_model, random_glass

B = "energy_barriers"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("models") / "tiny.pt"
    make_tiny_model(path, "symgnn")
    return str(path)


@pytest.fixture(scope="module")
def calc(model: str) -> SymGNNCalculator:
    return SymGNNCalculator(model)


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


def test_extxyz_trajectory(model: str, calc: SymGNNCalculator, tmp_path: Path, capsys) -> None:
    frames = _frames()
    src = tmp_path / "traj.extxyz"
    ase.io.write(src, frames)
    out = tmp_path / "pred.xyz"
    rc, stdout, _ = _predict(["--model", model, str(src), "-o", str(out)], capsys)
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
    assert not (tmp_path / "pred.xyz.tmp").exists()


def test_label_name_index_and_existing_label(model: str, tmp_path: Path, capsys) -> None:
    frames = _frames()[:2]
    for atoms in frames:
        atoms.arrays["energy_barrier"] = np.linspace(1.0, 2.0, len(atoms))  # "true" labels
    src = tmp_path / "labelled.xyz"
    ase.io.write(src, frames)
    out = tmp_path / "last.xyz"
    rc, stdout, _ = _predict(
        ["--model", model, "--index", "-1", "--label-name", "pred", str(src), "-o", str(out)],
        capsys,
    )
    assert rc == 0 and "wrote 1 frame(s)" in stdout
    (last,) = ase.io.read(out, ":")
    assert len(last) == len(frames[1]) and "pred" in last.arrays
    np.testing.assert_allclose(last.arrays["energy_barrier"], frames[1].arrays["energy_barrier"])

    out2 = tmp_path / "kept.xyz"
    rc, stdout, _ = _predict(["--model", model, str(src), "-o", str(out2)], capsys)
    assert rc == 0 and "pearson r vs input" in stdout
    first = ase.io.read(out2, 0)
    np.testing.assert_allclose(
        first.arrays["energy_barrier_input"], frames[0].arrays["energy_barrier"]
    )


def test_lammps_data(model: str, calc: SymGNNCalculator, tmp_path: Path, capsys) -> None:
    atoms = random_glass(40, seed=4)
    with_masses = tmp_path / "glass.data"
    ase.io.write(with_masses, atoms, format="lammps-data", masses=True, specorder=["Cu", "Zr"])
    no_masses = tmp_path / "bare.lmp"
    ase.io.write(no_masses, atoms, format="lammps-data", specorder=["Cu", "Zr"])
    assert guess_format(with_masses) == guess_format(no_masses) == "lammps-data"
    out = tmp_path / "data.xyz"
    rc, stdout, _ = _predict(["--model", model, str(with_masses), "-o", str(out)], capsys)
    assert rc == 0, stdout
    ref = calc.get_property(B, atoms)
    np.testing.assert_allclose(ase.io.read(out).arrays["energy_barrier"], ref, atol=1e-7)
    rc, _, err = _predict(["--model", model, str(no_masses), "-o", str(out)], capsys)
    assert rc == 2 and "--types" in err and "`H`" in err
    rc, _, _ = _predict(
        ["--model", model, "--types", "Cu,Zr", str(no_masses), "-o", str(out)], capsys
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


def test_lammps_dump_frames(model: str, calc: SymGNNCalculator, tmp_path: Path, capsys) -> None:
    frames = [random_glass(20, seed=s) for s in (6, 7)]
    dump = tmp_path / "md.lammpstrj"
    _write_dump(dump, frames)
    out = tmp_path / "dump.xyz"
    rc, stdout, _ = _predict(
        ["--model", model, "--types", "Cu,Zr", str(dump), "-o", str(out)], capsys
    )
    assert rc == 0 and "wrote 2 frame(s)" in stdout
    for got, ref in zip(ase.io.read(out, ":"), frames, strict=True):
        assert got.get_chemical_symbols() == ref.get_chemical_symbols()
        np.testing.assert_allclose(
            got.arrays["energy_barrier"], calc.get_property(B, ref), atol=1e-6
        )


def test_poscar_and_cif_together(model: str, tmp_path: Path, capsys) -> None:
    atoms = random_glass(16, seed=8)
    ase.io.write(tmp_path / "POSCAR", atoms, format="vasp")
    ase.io.write(tmp_path / "glass.cif", atoms)
    out = tmp_path / "both.xyz"
    rc, stdout, _ = _predict(
        ["--model", model, str(tmp_path / "POSCAR"), str(tmp_path / "glass.cif"), "-o", str(out)],
        capsys,
    )
    assert rc == 0 and "wrote 2 frame(s), 32 atoms" in stdout
    a, b = ase.io.read(out, ":")
    np.testing.assert_allclose(a.arrays["energy_barrier"], b.arrays["energy_barrier"], atol=1e-5)


def test_errors(model: str, tmp_path: Path, capsys) -> None:
    src = tmp_path / "one.xyz"
    ase.io.write(src, random_glass(10, seed=9))
    out = tmp_path / "out.xyz"
    rc, _, err = _predict(["--model", model, str(tmp_path / "missing.xyz"), "-o", str(out)], capsys)
    assert rc == 2 and "input file not found" in err
    rc, _, err = _predict(["--model", str(tmp_path / "nope.pt"), str(src), "-o", str(out)], capsys)
    assert rc == 2 and "model file not found" in err
    rc, _, err = _predict(
        ["--model", model, "--label-name", "my barrier", str(src), "-o", str(out)], capsys
    )
    assert rc == 2 and "--label" in err
    rc, _, err = _predict(["--model", model, str(src), "-o", str(src)], capsys)
    assert rc == 2 and "also an input" in err
    rc, _, err = _predict(["--model", model, "--types", "Cu,Zr", str(src), "-o", str(out)], capsys)
    assert rc == 2 and "LAMMPS" in err
    bad = tmp_path / "nickel.xyz"
    ase.io.write(bad, Atoms("Ni2", positions=[[0, 0, 0], [2.5, 0, 0]]))
    rc, _, err = _predict(["--model", model, str(src), str(bad), "-o", str(out)], capsys)
    assert rc == 2 and "nickel.xyz frame 0" in err and "[Cu, Zr]" in err
    assert not out.exists() and not (tmp_path / "out.xyz.tmp").exists()


def test_console_script(model: str, tmp_path: Path) -> None:
    src = tmp_path / "g.xyz"
    ase.io.write(src, [random_glass(12, seed=s) for s in range(2)])
    out = tmp_path / "g_pred.xyz"
    exe = Path(sys.executable).with_name("symgnn")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "symgnn_ase"]
    proc = subprocess.run(
        [*cmd, "predict", "--model", model, str(src), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(" atoms, barrier mean ") == 2
    assert len(ase.io.read(out, ":")) == 2
