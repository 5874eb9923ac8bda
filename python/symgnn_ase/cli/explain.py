"""``symgnn explain``: which neighbors drive an atom's predicted barrier (see ``docs/explain.md``)."""

from __future__ import annotations

import argparse
from typing import Any

from ..explain.core import ExplainConfig

__all__ = ["register", "run"]

_DEFAULTS = ExplainConfig()


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "explain",
        help="which edges drive an atom's predicted barrier (GNNExplainer for regression)",
        description=(
            "Learn a soft edge mask over each explained atom's n_layers-hop receptive field "
            "that keeps the model's prediction for that atom (MSE) with few, decisive edges "
            "(size and entropy penalties); write the edge importances (CSV), pictures (PNG) "
            "and a JSON summary with fidelity numbers to OUTDIR."
        ),
    )
    p.add_argument("structure", help="structure file (any format ase.io.read reads)")
    p.add_argument(
        "--model",
        default=None,
        help="exported model file or bundled model name (default: the bundled CuZr model)",
    )
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
    p.add_argument(
        "--epochs",
        type=int,
        default=_DEFAULTS.epochs,
        help=f"optimizer steps per atom (default {_DEFAULTS.epochs})",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=_DEFAULTS.lr,
        help=f"Adam learning rate (default {_DEFAULTS.lr})",
    )
    p.add_argument(
        "--size-weight",
        type=float,
        default=_DEFAULTS.size_weight,
        help=f"weight of the mask-size penalty sum(mask) (default {_DEFAULTS.size_weight})",
    )
    p.add_argument(
        "--entropy-weight",
        type=float,
        default=_DEFAULTS.entropy_weight,
        help=f"weight of the mean mask entropy (default {_DEFAULTS.entropy_weight})",
    )
    p.add_argument(
        "--scale",
        choices=["empty", "label_std", "none"],
        default=_DEFAULTS.scale,
        help="unit of the prediction error: |f(all edges) - f(no edges)| (default), the "
        "model's label std, or none (eV, the paper's plain MSE)",
    )
    p.add_argument("--seed", type=int, default=_DEFAULTS.seed, help="seed of masks and sampling")
    p.add_argument("-o", "--output-dir", required=True, metavar="OUTDIR", help="output folder")
    p.add_argument("--format", default=None, help="ase.io format of STRUCTURE (default: guessed)")
    p.add_argument(
        "--index", default="-1", help="frame of STRUCTURE, in ase.io syntax (default: -1, last)"
    )
    p.add_argument(
        "--types",
        nargs="+",
        default=None,
        metavar="ELEMENT",
        help="elements of LAMMPS atom types 1, 2, ... (LAMMPS data/dump files)",
    )
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (default 0: torch's default; 1 is steadiest on a busy machine)",
    )
    p.add_argument("--no-plots", action="store_true", help="write no PNG files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.threads < 0:
        raise ValueError(f"--threads must be >= 0, got {args.threads}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
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

    explain_structure(
        structure=args.structure,
        output_dir=args.output_dir,
        atoms_to_explain=list(args.atom),
        model=args.model,
        sample=args.sample,
        config=cfg,
        fmt=args.format,
        index=args.index,
        types=args.types,
        device=args.device,
        plots=not args.no_plots,
    )
    return 0
