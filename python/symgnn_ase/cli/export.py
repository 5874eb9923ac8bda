"""export a trained run to a TorchScript model file

Export a run folder (its best.pt) or a checkpoint to TorchScript with the metadata of
docs/contracts.md (cutoff, layers, species, feature width, training info).
"""

from __future__ import annotations

import argparse


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="run folder or .pt checkpoint")
    p.add_argument("-o", "--output", required=True, help="model file to write")
    p.add_argument(
        "--transforms",
        type=int,
        default=None,
        help="SymGNN only: number of fixed transforms per distribution used at inference "
        "(default: the training config's n_samples_eval)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed for --transforms")


def run(args: argparse.Namespace) -> int:
    from ..train.export import export_run

    path = export_run(args.checkpoint, args.output, args.transforms, args.seed)
    print(f"wrote {path}")
    return 0
