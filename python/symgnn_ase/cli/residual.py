"""a baseline model and networks trained on its residual, as one model

Write one TorchScript file whose barrier is BASE's prediction plus every NET's: NET is a run
trained with `data.baseline` (it learned the labels less a baseline's prediction), BASE the
model to add it to (exported file, bundled name, run folder or checkpoint; same r_max, species
and dtype). BASE must be the file NET was trained on (its sha256 is recorded in the run);
`symgnn export RUN` does this with the run's own baseline. --any-baseline pairs the network
with another model of the same r_max and species (the network's training baseline was a
different file). It is used like any model.
"""

from __future__ import annotations

import argparse


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("base", metavar="BASE", help="the baseline model")
    p.add_argument("nets", nargs="+", metavar="NET", help="networks trained on its residual")
    p.add_argument("-o", "--output", required=True, help="model file to write")
    p.add_argument(
        "--any-baseline",
        action="store_true",
        help="accept a BASE that is not the file NET was trained on (its sha256 differs); "
        "NET must still have been trained with data.baseline",
    )


def run(args: argparse.Namespace) -> int:
    from ..compose.residual import export_residual

    path = export_residual(args.base, list(args.nets), args.output, args.any_baseline)
    print(f"wrote {path} ({args.base} + {' + '.join(args.nets)})")
    return 0
