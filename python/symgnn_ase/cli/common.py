"""The options several subcommands share, defined once so that each means the same everywhere.

``--model`` (a model file or bundled name), ``--device``, ``--threads``, ``--label`` (the
per-atom barrier array), and the structure-reading options ``--format``, ``--index``,
``--types`` (one form: comma separated elements of LAMMPS types 1, 2, ...).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ..format import OUTPUT_NAME

__all__ = [
    "MODEL_HELP",
    "add_model",
    "add_device",
    "add_threads",
    "add_label",
    "add_reading",
    "add_no_progress",
    "check_threads",
    "types_of",
    "reading_of",
]

MODEL_HELP = (
    "exported model file (`symgnn export`) or bundled model name: default, symgnn_length, "
    "paper, equivariant"
)


def add_model(parser: argparse.ArgumentParser) -> None:
    """``--model MODEL`` (default: the bundled default model)."""
    parser.add_argument(
        "--model", default=None, metavar="MODEL", help=MODEL_HELP + " (default: default)"
    )


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="cpu", help="torch device: cpu, cuda or cuda:N (default: cpu)"
    )


def add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        metavar="N",
        help="torch CPU threads while the command runs (default 0: torch's default, from "
        "OMP_NUM_THREADS or the cores; 1 is steadiest on a busy machine)",
    )


def check_threads(args: argparse.Namespace) -> int:
    """``--threads`` as given, refused when negative."""
    if args.threads < 0:
        raise ValueError(f"--threads must be >= 0, got {args.threads}")
    return args.threads


def add_label(parser: argparse.ArgumentParser, help: str) -> None:
    """``--label ARRAY``, the per-atom barrier array (``--label-name`` still accepted)."""
    parser.add_argument(
        "--label", default=OUTPUT_NAME, metavar="ARRAY", help=f"{help} (default: {OUTPUT_NAME})"
    )
    # the old spelling of `symgnn predict`
    parser.add_argument(
        "--label-name", dest="label", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )


def add_reading(parser: argparse.ArgumentParser, index: str) -> None:
    """``--format``, ``--index`` and ``--types``: how to read the structure files."""
    parser.add_argument(
        "--format",
        default=None,
        help="ase.io format of the structure files, e.g. extxyz, lammps-data, "
        "lammps-dump-text, vasp, cif (default: guessed from the file name and content)",
    )
    parser.add_argument(
        "--index",
        default=index,
        help="frames to read, in ase.io syntax: ':' all, '-1' the last, '0:10:2' a slice "
        f"(default: {index})",
    )
    parser.add_argument(
        "--types",
        default=None,
        metavar="ELEMENTS",
        help="elements of LAMMPS atom types 1, 2, ..., comma separated, e.g. Cu,Zr (LAMMPS "
        "data/dump files carry type numbers; like `pair_coeff * * Cu Zr`)",
    )


def types_of(args: argparse.Namespace) -> Sequence[str] | None:
    """``--types`` as a list of element names (None when not given)."""
    from ..data.io import parse_types

    return parse_types(args.types)


def reading_of(args: argparse.Namespace) -> dict[str, Any]:
    """The options of :func:`add_reading` as the keyword arguments ``fmt``, ``index`` and
    ``types`` of the library's readers."""
    return {"fmt": args.format, "index": args.index, "types": types_of(args)}


def add_no_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (also off when not a tty)"
    )
