"""``symgnn ensemble MODEL1 MODEL2 ... -o ens.pt``: K models in one file (mean and per-atom
standard deviation)."""

from __future__ import annotations

import argparse

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ensemble",
        help="several trained models in one file: mean barrier and per-atom std",
        description="Write one TorchScript file holding every MODEL (exported files, bundled "
        "names, run folders or checkpoints; same r_max, species and dtype). Its forward gives "
        "the members' mean, so it is used like any model (--model, LAMMPS `compute symgnn`); "
        "the calculator, `symgnn predict` and `compute ... std yes` also report the per-atom "
        "standard deviation over the members.",
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help="two or more models")
    p.add_argument("-o", "--output", required=True, help="ensemble file to write")
    p.add_argument(
        "--std-scale",
        type=float,
        default=1.0,
        help="factor on the members' standard deviation so that it reads as an error bar "
        "(default 1; training/studies/calibrate_ensemble.py measures it on validation data)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..compose.ensemble import export_ensemble

    path = export_ensemble(list(args.models), args.output, std_scale=args.std_scale)
    print(f"wrote {path} ({len(args.models)} members)")
    return 0
