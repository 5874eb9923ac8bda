"""leave-one-glass-out cross-validation of a training config

Each glass of the config (train and valid files, grouped by the name before the first `_` or
`.`) is held out in turn: the next glass early-stops, the rest train, and the held-out glass is
scored with the fold's best model. Prints the Pearson of every fold, their mean and spread.
Resumable: rerun the same command after a kill; `--folds` runs some folds only.
"""

from __future__ import annotations

import argparse

from .common import add_no_progress


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="YAML or TOML training config (any kind, ridge included)")
    p.add_argument("-o", "--output", required=True, help="folder of the folds and cv.json")
    p.add_argument(
        "--folds", nargs="+", default=None, metavar="GLASS", help="run only these held-out glasses"
    )
    add_no_progress(p)


def run(args: argparse.Namespace) -> int:
    from ..train.cv import run_cv

    summary = run_cv(args.config, args.output, folds=args.folds, progress=not args.no_progress)
    for glass, value in summary["per_fold"].items():
        print(f"  {glass:<10} held out: Pearson {value:.4f}")
    for kind, value in summary["by_file_kind"].items():
        print(f"  mean over folds, {kind}: {value:.4f}")
    print(
        f"{summary['folds']} fold(s): Pearson {summary['pearson_mean']:.4f} "
        f"± {summary['pearson_std']:.4f} (mean ± std over folds; min {summary['pearson_min']:.4f})"
        f"; {args.output}/cv.json"
    )
    return 0
