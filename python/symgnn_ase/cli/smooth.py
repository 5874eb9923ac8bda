"""smooth a model's predictions over neighbouring atoms

Write one TorchScript file that predicts with MODEL and replaces each atom's barrier by its
average with its neighbours' within the model's r_max, weighted by exp(-r/L) times a cutoff
that goes smoothly to 0 at r_max (the atom itself has weight 1). It is used like any model
(--model, LAMMPS `compute symgnn`); an ensemble keeps its per-atom std (over the smoothed
members).
"""

from __future__ import annotations

import argparse


def arguments(p: argparse.ArgumentParser) -> None:
    from ..compose.smooth import CUTOFFS

    p.add_argument("model", metavar="MODEL", help="exported model file or bundled name")
    p.add_argument("-o", "--output", required=True, help="model file to write")
    p.add_argument("--length", type=float, required=True, help="smoothing length L, Å")
    p.add_argument(
        "--cutoff",
        choices=CUTOFFS,
        default="cosine",
        help="form of the cutoff that takes the weight to 0 at r_max (default cosine)",
    )


def run(args: argparse.Namespace) -> int:
    from ..compose.smooth import export_smoothed

    path = export_smoothed(args.model, args.output, args.length, args.cutoff)
    print(f"wrote {path} ({args.model} smoothed over L = {args.length:g} Å, {args.cutoff} cutoff)")
    return 0
