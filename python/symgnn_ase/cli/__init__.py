"""The ``symgnn`` command line: one sub-command per module, each holding only argument parsing
and printing (the work is done by the library modules they call)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

__all__ = ["build_parser", "main"]

# sub-command -> module holding `register(subparsers)` and `run(args) -> int`
_COMMANDS = {
    "train": ".train",
    "evaluate": ".evaluate",
    "export": ".export",
    "predict": ".predict",
    "explain": ".explain",
    "doctor": ".doctor",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="symgnn", description="Per-atom energy barriers of metallic glasses (SymGNN)."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _COMMANDS.values():
        try:
            mod = importlib.import_module(module, __package__)
        except ModuleNotFoundError as exc:  # a part not built in this checkout
            if exc.name and exc.name.endswith(module.lstrip(".")):
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"symgnn {args.command}: error: {exc}", file=sys.stderr)
        return 2
