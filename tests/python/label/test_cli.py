"""`symgnn label`: a run from the command line, and one-line errors naming the bad input."""

from __future__ import annotations

import pytest

from symgnn_ase.cli import main

FAST_SET = ["--set", "active_radius=3.7", "--set", "shell_width=4.0", "--set", "basin_max_steps=40"]


def test_label_command(tmp_path, small_glass, capsys):
    out = tmp_path / "labels"
    argv = ["label", str(small_glass), "--potential", "CuZr_mm.eam.fs", "--atoms", "7"]
    argv += ["--searches", "1", "--max-attempts", "1", *FAST_SET, "-o", str(out)]
    assert main([*argv, "--workers", "0"]) == 0
    text = capsys.readouterr().out
    assert "searches run now: 1" in text and "cost per search" in text
    assert (out / "barriers.extxyz").is_file() and (out / "searches.jsonl").is_file()
    assert main([*argv, "--workers", "0"]) == 0  # finished: nothing to run
    assert "searches run now: 0" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--atoms", "999"], "index 999 is out of range for a glass of 250 atoms"),
        (["--set", "bogus=1"], "unknown label config key(s) ['bogus']"),
        (["--set", "active_radius"], "--set 'active_radius': expected KEY=VALUE"),
        (["--potential", "missing.eam.fs"], "potential file not found: missing.eam.fs"),
        (["--config", "nope.yaml"], "--config: file not found: nope.yaml"),
    ],
)
def test_label_errors(tmp_path, small_glass, capsys, extra, message):
    argv = ["label", str(small_glass), "--potential", "CuZr_mm.eam.fs", *FAST_SET]
    assert main([*argv, "-o", str(tmp_path / "out"), "--workers", "0", *extra]) == 2
    assert message in capsys.readouterr().err
