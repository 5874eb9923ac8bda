"""``symgnn predict --quench POTENTIAL``: barriers of each frame's inherent structure.

Each frame is minimized as a copy (LAMMPS, the EAM file) before predicting; the output keeps the
input's positions, the input file is never touched, and bad input gets one line naming it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms

from symgnn_ase import SymGNNCalculator
from symgnn_ase.cli import main
from symgnn_ase.potential.eam import lammps_potential_path
from symgnn_ase.potential.quench import QuenchSettings, quench_lammps
from symgnn_ase.testing import random_glass

B = "energy_barriers"


@pytest.fixture(scope="module")
def potential() -> str:
    return str(lammps_potential_path("CuZr_mm.eam.fs"))


def _predict(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(["predict", "--no-progress", *args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("symgnn predict: error: "), err
    return lines[0]


def test_quench_equals_predicting_a_separately_quenched_copy(
    tiny_model, potential, tmp_path, capsys
):
    src = tmp_path / "hot.extxyz"
    ase.io.write(src, [random_glass(60, seed=s) for s in (1, 2)])
    before = _sha(src)
    out = tmp_path / "out.xyz"
    args = ["--model", tiny_model, "--quench", potential, "--quench-fmax", "1e-3"]
    rc, stdout, err = _predict([*args, "--quench-steps", "500", str(src), "-o", str(out)], capsys)
    assert rc == 0, err
    assert stdout.count("quenched (atoms moved up to ") == 2
    assert _sha(src) == before  # the input is never touched

    calc = SymGNNCalculator(tiny_model)
    settings = QuenchSettings(fmax=1e-3, max_steps=500)
    got = ase.io.read(out, ":")
    for g, ref in zip(got, ase.io.read(src, ":"), strict=True):
        # the user's positions, not the quenched ones
        np.testing.assert_array_equal(g.positions, ref.positions)
        minimum = quench_lammps(ref, potential, settings)
        assert np.abs(minimum.positions - ref.positions).max() > 0.05  # it did move
        expected = calc.get_property(B, minimum)
        np.testing.assert_allclose(g.arrays["energy_barrier"], expected, rtol=0, atol=1e-7)
        plain = calc.get_property(B, ref)
        assert np.abs(plain - expected).max() > 1e-4  # not the barriers of the snapshot itself
        assert g.info["symgnn_quench"] == "lammps cg CuZr_mm.eam.fs fmax=0.001 max_steps=500"

    # predicting again without --quench drops the note with the quenched barriers
    again = tmp_path / "again.xyz"
    assert _predict(["--model", tiny_model, str(out), "-o", str(again)], capsys)[0] == 0
    assert "symgnn_quench" not in ase.io.read(again).info


def test_quench_missing_or_unreadable_potential(tiny_model, tmp_path, capsys):
    src = tmp_path / "in.xyz"
    ase.io.write(src, random_glass(20, seed=3))
    out = tmp_path / "out.xyz"
    missing = tmp_path / "nowhere" / "CuZr.eam.fs"
    rc, stdout, err = _predict(
        ["--model", tiny_model, "--quench", str(missing), str(src), "-o", str(out)], capsys
    )
    assert rc == 2 and stdout == ""
    assert f"quench: potential file not found: {missing}" in _one_error_line(err)
    not_eam = tmp_path / "notes.txt"
    not_eam.write_text("this is\nnot a\npotential\n")
    rc, _, err = _predict(
        ["--model", tiny_model, "--quench", str(not_eam), str(src), "-o", str(out)], capsys
    )
    assert rc == 2 and f"{not_eam}: not an EAM setfl/fs potential" in _one_error_line(err)
    # nor may the output be the potential file
    rc, _, err = _predict(
        ["--model", tiny_model, "--quench", str(not_eam), str(src), "-o", str(not_eam)], capsys
    )
    assert rc == 2 and "is also an input" in _one_error_line(err)
    assert not_eam.read_text() == "this is\nnot a\npotential\n"
    assert not out.exists()


def test_quench_bad_frames_name_the_culprit(tiny_model, potential, tmp_path, capsys):
    good = random_glass(30, seed=4)
    nickel = random_glass(30, seed=5)
    nickel.symbols[7] = "Ni"
    nan = random_glass(30, seed=6)
    nan.positions[4, 2] = np.nan
    src = tmp_path / "traj.extxyz"
    ase.io.write(src, [good, nickel, nan])
    before = _sha(src)
    out = tmp_path / "out.xyz"
    args = ["--model", tiny_model, "--quench", potential]
    rc, stdout, err = _predict([*args, str(src), "-o", str(out)], capsys)
    assert rc == 2
    assert (
        f"skipped {src} frame 1: element(s) ['Ni'] of the structure are not in the potential "
        "CuZr_mm.eam.fs (it has ['Cu', 'Zr'])" in err
    )
    assert (
        f"skipped {src} frame 2: quench: non-finite positions for 1 atom(s) (first: atom 4)" in err
    )
    last = err.strip().splitlines()[-1]
    assert last.startswith("symgnn predict: error: 2 frame(s) failed") and "1 good" in last
    assert "wrote 1 frame(s)" in stdout and len(ase.io.read(out, ":")) == 1
    assert _sha(src) == before

    # each alone: nothing to write, one line naming the file, frame and reason
    for atoms, reason in (
        (nickel, "element(s) ['Ni'] of the structure are not in the potential CuZr_mm.eam.fs"),
        (nan, "quench: non-finite positions for 1 atom(s) (first: atom 4)"),
    ):
        one = tmp_path / "one.xyz"
        ase.io.write(one, atoms)
        rc, _, err = _predict([*args, str(one), "-o", str(tmp_path / "none.xyz")], capsys)
        line = _one_error_line(err.split("\n", 1)[1])  # after the `skipped ...` line
        assert rc == 2 and "every frame failed, nothing written" in line
        assert f"{one} frame 0: {reason}" in line
        assert not (tmp_path / "none.xyz").exists()
    rc, _, err = _predict([*args, "--strict", str(src), "-o", str(out)], capsys)
    line = _one_error_line(err)
    assert rc == 2 and f"{src} frame 1: element(s) ['Ni']" in line and "--strict" in line


def test_quench_non_periodic_frame(tiny_model, potential, tmp_path, capsys):
    cluster = Atoms(
        random_glass(12, seed=3).get_chemical_symbols(), random_glass(12, seed=3).positions
    )
    src = tmp_path / "cluster.xyz"
    ase.io.write(src, cluster)
    rc, _, err = _predict(
        ["--model", tiny_model, "--quench", potential, str(src), "-o", str(tmp_path / "o.xyz")],
        capsys,
    )
    assert rc == 2 and "must be periodic in x, y and z" in err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--quench-fmax", "0.01"], "--quench-fmax needs --quench POTENTIAL"),
        (["--quench-steps", "10"], "--quench-steps needs --quench POTENTIAL"),
        (["--quench", "P", "--quench-fmax", "-1"], "--quench-fmax must be a positive number"),
        (["--quench", "P", "--quench-fmax", "nan"], "--quench-fmax must be a positive number"),
        (["--quench", "P", "--quench-steps", "0"], "--quench-steps must be >= 1, got 0"),
    ],
)
def test_quench_options(tiny_model, tmp_path, capsys, extra, message):
    src = tmp_path / "in.xyz"
    ase.io.write(src, random_glass(12, seed=3))
    rc, stdout, err = _predict(["--model", tiny_model, *extra, str(src), "-o", "o.xyz"], capsys)
    assert rc == 2 and stdout == "" and message in _one_error_line(err)
