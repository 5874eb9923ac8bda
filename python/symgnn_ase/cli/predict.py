"""``symgnn predict``: per-atom energy barriers of structure files, written as extxyz."""

from __future__ import annotations

import argparse
from typing import Any

from ..predict import DEFAULT_LABEL

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="per-atom energy barriers of structure files, written as extxyz",
        description=(
            "Predict every atom's energy barrier (eV) in each frame of the INPUT files "
            "(any format ase.io.read reads) and write all frames to OUTPUT (extxyz)."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="structure files")
    parser.add_argument(
        "-o", "--output", required=True, metavar="OUTPUT", help="extxyz file to write"
    )
    parser.add_argument(
        "--model",
        default=None,
        help="exported model file or bundled model name (default: the bundled CuZr model)",
    )
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument(
        "--label-name",
        default=DEFAULT_LABEL,
        help=f"name of the per-atom output array (default: {DEFAULT_LABEL})",
    )
    parser.add_argument(
        "--format",
        default=None,
        help="ase.io format of the inputs, e.g. extxyz, lammps-data, lammps-dump-text, "
        "vasp, cif (default: guessed from each file name and content)",
    )
    parser.add_argument(
        "--index",
        default=":",
        help="frames to read from each input, in ase.io syntax (default ':' = all; '-1' = last)",
    )
    parser.add_argument(
        "--types",
        default=None,
        metavar="ELEMENTS",
        help="elements of LAMMPS atom types 1, 2, ..., comma separated, e.g. Cu,Zr (LAMMPS "
        "data/dump files carry type numbers; like `pair_coeff * * Cu Zr`)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (also off when not a tty)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.io import parse_types
    from ..predict import predict_files

    predict_files(
        inputs=list(args.inputs),
        output=args.output,
        model=args.model,
        device=args.device,
        label_name=args.label_name,
        fmt=args.format,
        index=args.index,
        types=parse_types(args.types),
        progress=not args.no_progress,
    )
    return 0
