"""``symgnn export RUN_OR_CHECKPOINT -o model.pt``: a trained run to a TorchScript file."""

from __future__ import annotations

import argparse

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained run to a TorchScript model file",
        description="Export a run folder (its best.pt) or a checkpoint to TorchScript with "
        "the metadata of docs/contracts.md (cutoff, layers, species, feature width, training info).",
    )
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train.export import export_run

    path = export_run(args.checkpoint, args.output, args.transforms, args.seed)
    print(f"wrote {path}")
    return 0
