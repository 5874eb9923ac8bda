"""``symgnn predict`` with the relax protocol: the same barriers as the ASE calculator, the
input's positions kept, overrides and errors on the command line."""

from __future__ import annotations

import hashlib

import ase.io
import numpy as np
import pytest

from symgnn_ase import SymGNNCalculator
from symgnn_ase.cli import main
from symgnn_ase.potential import RelaxProtocol, write_relax_metadata
from symgnn_ase.testing import make_tiny_model, random_glass

B = "energy_barriers"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("predict_relax")
    plain = folder / "plain.pt"
    make_tiny_model(plain, "length")
    relax = write_relax_metadata(
        plain, folder / "relax.pt", RelaxProtocol(3, 0.12, 0.3, "CuZr_mm.eam.fs", "eam/fs")
    )
    nameless = write_relax_metadata(plain, folder / "nameless.pt", RelaxProtocol(2))
    return {"plain": str(plain), "relax": str(relax), "nameless": str(nameless)}


def _predict(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(["predict", "--no-progress", *args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _same(written: np.ndarray, direct: np.ndarray) -> None:
    """extxyz keeps 8 decimals; relaxing or not changes these barriers by ~1e-4 eV"""
    np.testing.assert_allclose(written, direct, rtol=0, atol=1e-8)


def test_predict_writes_the_calculators_barriers(models, tmp_path, capsys) -> None:
    frames = [random_glass(80, seed=s) for s in (1, 2)]
    src = tmp_path / "in.extxyz"
    ase.io.write(src, frames)
    frames = ase.io.read(src, ":")  # the positions as the file holds them
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    out = tmp_path / "out.xyz"
    rc, stdout, err = _predict(["--model", models["relax"], str(src), "-o", str(out)], capsys)
    assert rc == 0, err
    assert stdout.count("relaxed 3 steps") == 2
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before
    written = ase.io.read(out, ":")
    calc = SymGNNCalculator(models["relax"])
    for frame, atoms in zip(frames, written, strict=True):
        np.testing.assert_allclose(atoms.positions, frame.positions, atol=1e-7)  # not moved
        _same(atoms.arrays["energy_barrier"], calc.get_property(B, frame))
        assert atoms.info["symgnn_relax"].startswith("steps=3 alpha=0.12 cap=0.3")
    calc.close()
    # --potential and the overrides are the calculator's potential= and relax_*
    out2 = tmp_path / "out2.xyz"
    args = ["--model", models["nameless"], "--potential", "CuZr_mm.eam.fs"]
    args += ["--relax-steps", "1", "--relax-alpha", "0.05", "--relax-cap", "0.2"]
    rc, stdout, err = _predict([*args, str(src), "-o", str(out2)], capsys)
    assert rc == 0, err
    calc = SymGNNCalculator(
        models["nameless"],
        potential="CuZr_mm.eam.fs",
        relax_steps=1,
        relax_alpha=0.05,
        relax_cap=0.2,
    )
    for frame, atoms in zip(frames, ase.io.read(out2, ":"), strict=True):
        _same(atoms.arrays["energy_barrier"], calc.get_property(B, frame))
    calc.close()
    # --relax-steps 0: the plain model, and no relax note left from the earlier prediction
    out3 = tmp_path / "out3.xyz"
    rc, stdout, err = _predict(
        ["--model", models["relax"], "--relax-steps", "0", str(out), "-o", str(out3)], capsys
    )
    assert rc == 0, err
    plain = SymGNNCalculator(models["plain"])
    for frame, atoms in zip(frames, ase.io.read(out3, ":"), strict=True):
        _same(atoms.arrays["energy_barrier"], plain.get_property(B, frame))
        assert "symgnn_relax" not in atoms.info
    relaxed, unrelaxed = ase.io.read(out, 0), ase.io.read(out3, 0)
    assert (
        np.abs(relaxed.arrays["energy_barrier"] - unrelaxed.arrays["energy_barrier"]).max() > 1e-6
    )


def test_predict_errors_name_what_to_pass(models, tmp_path, capsys) -> None:
    src = tmp_path / "in.extxyz"
    ase.io.write(src, random_glass(60, seed=3))
    out = tmp_path / "out.xyz"
    rc, _, err = _predict(["--model", models["nameless"], str(src), "-o", str(out)], capsys)
    assert rc == 2 and "names no potential" in err and "--potential FILE" in err
    rc, _, err = _predict(
        ["--model", models["relax"], "--potential", "nope.eam.fs", str(src), "-o", str(out)],
        capsys,
    )
    assert rc == 2 and "relax potential 'nope.eam.fs' not found" in err
    rc, _, err = _predict(
        ["--model", models["relax"], "--relax-cap", "0", str(src), "-o", str(out)], capsys
    )
    assert rc == 2 and "relax cap must be a finite number > 0, got 0.0" in err
    assert not out.exists()
    # a frame the potential cannot take is a bad frame, named; the good ones are written
    mixed = tmp_path / "mixed.extxyz"
    cluster = random_glass(60, seed=4)
    cluster.pbc = False
    ase.io.write(mixed, [random_glass(60, seed=5), cluster])
    rc, _, err = _predict(["--model", models["relax"], str(mixed), "-o", str(out)], capsys)
    assert rc == 2 and "frame 1" in err and "periodic in x, y and z" in err
    assert len(ase.io.read(out, ":")) == 1
