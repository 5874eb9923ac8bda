"""The relax protocol itself (issue 25): the steps, their parameters, the model-file metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from symgnn_ase.potential import (
    RelaxProtocol,
    read_relax_metadata,
    relax_positions,
    stamp_relax,
    write_relax_metadata,
)

PROTOCOL = RelaxProtocol(4, 0.12, 0.3, "CuZr_mm.eam.fs", "eam/fs")


def test_steps_follow_a_hand_computation_with_the_cap_applied_exactly() -> None:
    x0 = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])
    k = np.array([1.0, 4.0, 20.0])  # per-atom springs pulling each atom to the origin

    def forces(x: np.ndarray) -> np.ndarray:
        return -k[:, None] * x

    protocol = RelaxProtocol(2, alpha=0.1, cap=0.5)
    x = relax_positions(x0, forces, protocol)
    # by hand: atom 0 sits at the minimum; atom 1's first step 0.4*|x| = 1.5 > 0.5 is capped,
    # its second 0.4*(|x| - 0.5) = 1.3 too; atom 2's steps 2*|x| are capped to 0.5 both times
    expected = x0.copy()
    for _ in range(2):
        d = 0.1 * forces(expected)
        n = np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1] + d[:, 2] * d[:, 2])
        s = np.where(n > 0.5, 0.5 / np.where(n > 0, n, 1.0), 1.0)
        expected = expected + d * s[:, None]
    assert np.array_equal(x, expected)
    np.testing.assert_array_equal(x[0], 0.0)
    u1 = x0[1] / np.linalg.norm(x0[1])
    np.testing.assert_allclose(x[1], x0[1] - 1.0 * u1, rtol=0, atol=1e-14)  # two caps of 0.5
    assert np.linalg.norm(x[2] - x0[2]) == pytest.approx(1.0, abs=1e-14)
    # an uncapped step is exactly alpha * F
    small = RelaxProtocol(1, alpha=0.01, cap=10.0)
    np.testing.assert_array_equal(relax_positions(x0, forces, small), x0 + 0.01 * forces(x0))
    # the input is untouched, the output float64 and new
    assert x.dtype == np.float64 and not np.shares_memory(x, x0)


def test_zero_steps_is_a_plain_copy_and_calls_no_forces() -> None:
    x0 = np.arange(12, dtype=np.float32).reshape(4, 3)

    def forces(x: np.ndarray) -> np.ndarray:
        raise AssertionError("no force call expected")

    x = relax_positions(x0, forces, RelaxProtocol.off())
    assert x.dtype == np.float64 and np.array_equal(x, x0) and x is not x0


def test_non_finite_forces_are_refused_naming_atom_and_step() -> None:
    calls = []

    def forces(x: np.ndarray) -> np.ndarray:
        calls.append(1)
        f = np.zeros_like(x)
        if len(calls) == 2:
            f[3, 1] = np.nan
        return f

    with pytest.raises(ValueError, match=r"relax step 2: the force on atom 3 is not finite"):
        relax_positions(np.zeros((5, 3)), forces, RelaxProtocol(3))
    with pytest.raises(ValueError, match=r"shape \[5, 2\], expected \[5, 3\]"):
        relax_positions(np.zeros((5, 3)), lambda x: np.zeros((5, 2)), RelaxProtocol(1))
    with pytest.raises(ValueError, match="atom 1 is not finite"):
        relax_positions(np.array([[0.0] * 3, [np.inf, 0, 0]]), np.zeros_like, RelaxProtocol(1))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(steps=-1), "steps must be an integer >= 0, got -1"),
        (dict(steps=1.5), "steps must be an integer"),
        (dict(steps=True), "steps must be an integer"),
        (dict(steps=1, alpha=0.0), "alpha must be a finite number > 0, got 0.0"),
        (dict(steps=1, alpha=float("nan")), "alpha must be a finite number > 0"),
        (dict(steps=1, cap=float("inf")), "cap must be a finite number > 0"),
        (dict(steps=1, cap="0.3"), "cap must be a finite number > 0, got '0.3'"),
        (dict(steps=1, potential=""), "potential must be a non-empty string"),
    ],
)
def test_protocol_values_are_checked(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RelaxProtocol(**kwargs)


def test_json_round_trip_and_overrides() -> None:
    text = PROTOCOL.to_json()
    assert json.loads(text) == {
        "steps": 4,
        "alpha": 0.12,
        "cap": 0.3,
        "potential": "CuZr_mm.eam.fs",
        "pair_style": "eam/fs",
    }
    assert RelaxProtocol.from_json(text) == PROTOCOL
    assert json.loads(RelaxProtocol(2).to_json()) == {"steps": 2, "alpha": 0.12, "cap": 0.3}
    over = PROTOCOL.with_overrides(steps=1, cap=0.1)
    assert (over.steps, over.alpha, over.cap, over.potential) == (1, 0.12, 0.1, "CuZr_mm.eam.fs")
    assert PROTOCOL.with_overrides() == PROTOCOL
    assert not PROTOCOL.with_overrides(steps=0).enabled and PROTOCOL.enabled
    with pytest.raises(ValueError, match="alpha must be a finite number > 0, got -1"):
        PROTOCOL.with_overrides(alpha=-1)


@pytest.mark.parametrize(
    "text, match",
    [
        ("{bad", "must be a JSON object"),
        ("[4, 0.12, 0.3]", "must be a JSON object"),
        ('{"steps": 4, "alpha": 0.12}', r"lacks \['cap'\]"),
        ('{"steps": 4, "alpha": 0.12, "cap": 0.3, "k": 1}', r"unknown entries \['k'\]"),
        ('{"steps": -4, "alpha": 0.12, "cap": 0.3}', "steps must be an integer >= 0"),
        ('{"steps": 4, "alpha": null, "cap": 0.3}', "alpha must be a finite number"),
    ],
)
def test_malformed_metadata_is_refused_naming_the_key_and_value(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        RelaxProtocol.from_json(text, source="m.pt")
    assert str(info.value).startswith("m.pt: metadata `relax`") and repr(text) in str(info.value)


def test_model_file_round_trip(tiny_model: str, tmp_path: Path) -> None:
    from symgnn_ase.export import load_model

    src_bytes = Path(tiny_model).read_bytes()
    assert read_relax_metadata(tiny_model) == RelaxProtocol.off()
    assert load_model(tiny_model).relax == RelaxProtocol.off()
    out = write_relax_metadata(tiny_model, tmp_path / "r.pt", PROTOCOL)
    assert Path(tiny_model).read_bytes() == src_bytes  # the model read is never touched
    assert read_relax_metadata(out) == PROTOCOL
    loaded = load_model(out)
    assert loaded.relax == PROTOCOL and read_relax_metadata(loaded) == PROTOCOL
    assert loaded.type_names == load_model(tiny_model).type_names
    # replacing an existing protocol keeps every other entry
    again = write_relax_metadata(out, tmp_path / "r2.pt", RelaxProtocol(0))
    assert load_model(again).relax == RelaxProtocol(0)
    assert load_model(again).info == loaded.info
    with pytest.raises(ValueError, match="is also an input"):
        write_relax_metadata(out, out, PROTOCOL)


def test_load_refuses_a_malformed_relax_entry(tmp_path: Path) -> None:
    from symgnn_ase.export import export_model, load_model
    from symgnn_ase.testing import make_tiny_model

    model = make_tiny_model(tmp_path / "a.pt", "length")
    export_model(
        model, tmp_path / "bad.pt", ["Cu", "Zr"], 5.0, metadata={"relax": '{"steps": "four"}'}
    )
    with pytest.raises(ValueError, match=r"bad\.pt: metadata `relax` .*steps"):
        load_model(tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="metadata `relax`"):
        read_relax_metadata(tmp_path / "bad.pt")


def test_stamp_relax(tiny_model: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="has no relax protocol yet"):
        stamp_relax(tiny_model, tmp_path / "x.pt")
    path, protocol = stamp_relax(tiny_model, tmp_path / "x.pt", steps=4, potential="CuZr_mm.eam.fs")
    assert protocol == PROTOCOL and read_relax_metadata(path) == PROTOCOL
    _, changed = stamp_relax(path, tmp_path / "y.pt", alpha=0.05)
    assert changed == RelaxProtocol(4, 0.05, 0.3, "CuZr_mm.eam.fs", "eam/fs")
    with pytest.raises(FileNotFoundError, match="relax potential 'nope.eam.fs' not found"):
        stamp_relax(path, tmp_path / "z.pt", potential="nope.eam.fs")
    with pytest.raises(ValueError, match="does not match the potential CuZr_mm.eam.fs"):
        stamp_relax(path, tmp_path / "z.pt", potential="CuZr_mm.eam.fs", pair_style="eam/alloy")
    assert not (tmp_path / "z.pt").exists()


def test_cli_relax(tiny_model: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from symgnn_ase.cli import main

    out = tmp_path / "r.pt"
    args = ["relax", tiny_model, "--steps", "4", "--potential", "CuZr_mm.eam.fs", "-o", str(out)]
    assert main(args) == 0
    assert read_relax_metadata(out) == PROTOCOL
    capsys.readouterr()
    assert main(["relax", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "4 steps, alpha 0.12" in printed and PROTOCOL.to_json() in printed
    assert main(["relax", str(out), "--steps", "2"]) == 2
    assert "--steps needs -o OUTPUT" in capsys.readouterr().err
    assert main(["relax", tiny_model, "-o", str(tmp_path / "n.pt")]) == 2
    assert "no relax protocol yet" in capsys.readouterr().err


def test_doctor_row(tiny_model: str, tmp_path: Path) -> None:
    from symgnn_ase.doctor import _relax_row

    assert _relax_row(Path(tiny_model)) == "off (steps 0)"
    good = write_relax_metadata(tiny_model, tmp_path / "g.pt", PROTOCOL)
    assert "potential found: " in _relax_row(good) and "CuZr_mm.eam.fs" in _relax_row(good)
    bad = write_relax_metadata(tiny_model, tmp_path / "b.pt", RelaxProtocol(2, potential="x.fs"))
    assert "PROBLEM: relax potential 'x.fs' not found" in _relax_row(bad)


def test_a_wrapped_model_keeps_the_protocol(tiny_model: str, tmp_path: Path) -> None:
    from symgnn_ase.compose.smooth import export_smoothed
    from symgnn_ase.export import load_model

    relaxed = write_relax_metadata(tiny_model, tmp_path / "r.pt", PROTOCOL)
    smoothed = export_smoothed(str(relaxed), tmp_path / "s.pt", 2.0, "cosine")
    assert load_model(smoothed).relax == PROTOCOL
    plain = export_smoothed(tiny_model, tmp_path / "p.pt", 2.0, "cosine")
    assert load_model(plain).relax == RelaxProtocol.off()
