"""which edges drive an atom's predicted barrier (GNNExplainer for regression)

Learn a soft edge mask over each explained atom's n_layers-hop receptive field that keeps the
model's prediction for that atom (MSE) with few, decisive edges (size and entropy penalties);
write the edge importances (CSV), pictures (PNG) and a JSON summary with fidelity numbers to
OUTDIR.
"""

from __future__ import annotations

import argparse

from ..explain.core import ExplainConfig
from .common import add_device, add_model, add_reading, add_threads, check_threads, reading_of

_DEFAULTS = ExplainConfig()


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("structure", help="structure file (any format ase.io.read reads)")
    add_model(p)
    p.add_argument(
        "--atom",
        type=int,
        action="append",
        default=[],
        metavar="I",
        help="index of an atom to explain (0-based; repeat for several)",
    )
    p.add_argument(
        "--top",
        type=int,
        default=_DEFAULTS.top_k,
        metavar="K",
        help=f"edges kept for fidelity and drawn in the global view (default {_DEFAULTS.top_k})",
    )
    p.add_argument(
        "--sample",
        type=int,
        default=0,
        metavar="N",
        help="also explain N random atoms (seeded) for the importance-vs-distance statistic",
    )
    # the mask optimization's settings, with ExplainConfig's defaults
    for flag, kind, what in (
        ("--epochs", int, "optimizer steps per atom"),
        ("--lr", float, "Adam learning rate"),
        ("--size-weight", float, "weight of the mask-size penalty sum(mask)"),
        ("--entropy-weight", float, "weight of the mean mask entropy"),
    ):
        default = getattr(_DEFAULTS, flag[2:].replace("-", "_"))
        p.add_argument(flag, type=kind, default=default, help=f"{what} (default {default})")
    p.add_argument(
        "--scale",
        choices=["empty", "label_std", "none"],
        default=_DEFAULTS.scale,
        help="unit of the prediction error: |f(all edges) - f(no edges)| (default), the "
        "model's label std, or none (eV, the paper's plain MSE)",
    )
    p.add_argument("--seed", type=int, default=_DEFAULTS.seed, help="seed of masks and sampling")
    p.add_argument("-o", "--output-dir", required=True, metavar="OUTDIR", help="output folder")
    add_reading(p, index="-1")
    add_device(p)
    add_threads(p)
    p.add_argument("--no-plots", action="store_true", help="write no PNG files")


def run(args: argparse.Namespace) -> int:
    threads = check_threads(args)
    cfg = ExplainConfig(
        epochs=args.epochs,
        lr=args.lr,
        size_weight=args.size_weight,
        entropy_weight=args.entropy_weight,
        seed=args.seed,
        top_k=args.top,
        scale=args.scale,
    )
    from ..explain.structure import explain_structure
    from ..runtime import torch_threads

    with torch_threads(threads):
        explain_structure(
            structure=args.structure,
            output_dir=args.output_dir,
            atoms_to_explain=list(args.atom),
            model=args.model,
            sample=args.sample,
            config=cfg,
            **reading_of(args),
            device=args.device,
            plots=not args.no_plots,
        )
    return 0
