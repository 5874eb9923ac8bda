"""An option means the same thing in every subcommand that has it (cli/common.py)."""

from __future__ import annotations

import argparse

import pytest

from symgnn_ase.cli import build_parser

SHARED = ("--model", "--device", "--threads", "--types", "--format", "--label", "--no-progress")


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {opt: action for action in parser._actions for opt in action.option_strings}


@pytest.mark.parametrize("name", SHARED)
def test_shared_options_agree(name: str) -> None:
    found = {cmd: _options(p)[name] for cmd, p in _subcommands().items() if name in _options(p)}
    assert found, f"no subcommand has {name}"
    first = next(iter(found.values()))
    for cmd, action in found.items():
        assert (action.dest, action.type, action.default, action.nargs, action.metavar) == (
            first.dest,
            first.type,
            first.default,
            first.nargs,
            first.metavar,
        ), f"{name} of `symgnn {cmd}` differs"
        if name != "--label":  # what the array holds differs (input labels / output)
            assert action.help == first.help, f"{name} of `symgnn {cmd}` has another help"


def test_every_model_command_shares_the_options() -> None:
    commands = _subcommands()
    for cmd in ("predict", "explain"):
        opts = _options(commands[cmd])
        assert {"--model", "--device", "--threads", "--types", "--format", "--index"} <= set(opts)
    for cmd in ("predict", "evaluate"):
        assert "--label" in _options(commands[cmd])
    assert "--threads" in _options(commands["evaluate"])


def test_label_old_spelling_and_types_form() -> None:
    parser = build_parser()
    args = parser.parse_args(["predict", "in.xyz", "-o", "out.xyz", "--label-name", "b"])
    assert args.label == "b"
    args = parser.parse_args(["predict", "in.xyz", "-o", "out.xyz"])
    assert args.label == "energy_barrier"
    args = parser.parse_args(["explain", "s.data", "--atom", "0", "-o", "o", "--types", "Cu,Zr"])
    assert args.types == "Cu,Zr"
