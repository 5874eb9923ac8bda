"""per-atom energy barriers of structure files, written as extxyz

Predict every atom's energy barrier (eV) in each frame of the INPUT files (any format
ase.io.read reads) and write all frames to OUTPUT (extxyz).
"""

from __future__ import annotations

import argparse

from .common import (
    add_device,
    add_label,
    add_model,
    add_no_progress,
    add_reading,
    add_threads,
    check_threads,
    types_of,
)


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="structure files")
    parser.add_argument(
        "-o", "--output", required=True, metavar="OUTPUT", help="extxyz file to write"
    )
    add_model(parser)
    add_device(parser)
    add_threads(parser)
    add_label(parser, "name of the per-atom output array")
    add_reading(parser, index=":")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first frame that fails and write nothing (default: write the good "
        "frames, list the bad ones with their index and reason, exit 2)",
    )
    add_no_progress(parser)


def run(args: argparse.Namespace) -> int:
    from ..predict import predict_files
    from ..threads import torch_threads

    with torch_threads(check_threads(args)):
        predict_files(
            inputs=list(args.inputs),
            output=args.output,
            model=args.model,
            device=args.device,
            label_name=args.label,
            fmt=args.format,
            index=args.index,
            types=types_of(args),
            progress=not args.no_progress,
            strict=args.strict,
        )
    return 0
