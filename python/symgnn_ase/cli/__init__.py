"""The ``symgnn`` command line: one sub-command per module, each holding only argument parsing
and printing (the work is done by the library modules they call)."""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import sys
from typing import NoReturn

__all__ = ["build_parser", "main"]

# sub-command -> module with a docstring (help line, blank line, description),
# `arguments(parser)` and `run(args) -> int`
_COMMANDS = {
    "train": ".train",
    "cv": ".cv",
    "evaluate": ".evaluate",
    "export": ".export",
    "ensemble": ".ensemble",
    "residual": ".residual",
    "smooth": ".smooth",
    "compose": ".compose",
    "relax": ".relax",
    "predict": ".predict",
    "explain": ".explain",
    "doctor": ".doctor",
    "info": ".info",
    "label": ".label",
    "demo": ".demo",
}


class _Parser(argparse.ArgumentParser):
    """Usage errors on one line, naming the option and the value (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="symgnn", description="Per-atom energy barriers of metallic glasses (SymGNN)."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in _COMMANDS.items():
        try:
            mod = importlib.import_module(module, __package__)
        except ModuleNotFoundError as exc:  # a part not built in this checkout
            if exc.name and exc.name.endswith(module.lstrip(".")):
                continue
            raise
        if hasattr(mod, "arguments"):
            # the module's docstring: the help line, a blank line, the description
            summary, _, description = inspect.cleandoc(mod.__doc__).partition("\n\n")
            command = sub.add_parser(name, help=summary, description=description or summary)
            mod.arguments(command)
            command.set_defaults(func=mod.run)
        else:  # a module with its own register(subparsers)
            mod.register(sub)
    return parser


def _one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (its type named when the message alone says little)."""
    text = " ".join(str(exc).split()) if str(exc).strip() else ""
    if "failed in the TorchScript interpreter" in str(exc):  # a model's error, with its trace
        from ..export import script_error_line

        text = f"inside the TorchScript model: {script_error_line(exc)}"
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in text:
        text = f"{exc.filename}: {exc.strerror or text}"
    expected = (ValueError, FileNotFoundError, RuntimeError, OSError)
    if not text or not isinstance(exc, expected):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text


def main(argv: list[str] | None = None) -> int:
    """Run ``symgnn``; a failure is one line on stderr naming the bad input and exit status 2
    (with ``-v`` the traceback too)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"symgnn {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line
        if args.verbose:
            import traceback

            traceback.print_exc()
        hint = "" if args.verbose else " (run with -v for the traceback)"
        expected = isinstance(exc, (ValueError, FileNotFoundError))
        print(
            f"symgnn {args.command}: error: {_one_line(exc)}{'' if expected else hint}",
            file=sys.stderr,
        )
        return 2
