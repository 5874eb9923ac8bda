"""train a model from a YAML/TOML config

Train a model; everything is in the config file. The run folder gets the config, the git commit,
metrics.csv, last.pt/best.pt and plots. The same command fits the ridge kind (closed form) and,
with ``freeze: body``, the readout alone on the frozen network of ``init``.
"""

from __future__ import annotations

import argparse
import os

from .common import add_no_progress


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="YAML or TOML training config")
    p.add_argument("--resume", action="store_true", help="continue the run in run_dir")
    p.add_argument("--run-dir", default=None, help="override the config's run_dir")
    add_no_progress(p)
    p.add_argument(
        "--allow-changes",
        action="store_true",
        help="with --resume: continue although the data files or the model/optimizer "
        "settings changed since the run started (refused by default)",
    )


def run(args: argparse.Namespace) -> int:
    from ..train.loop import train

    out = train(
        args.config,
        resume=args.resume,
        run_dir=args.run_dir,
        progress=not args.no_progress,
        allow_changes=args.allow_changes,
    )
    if os.environ.get("RANK", "0") == "0":  # under torchrun: once, from rank 0
        print(f"run folder: {out}")
    return 0
