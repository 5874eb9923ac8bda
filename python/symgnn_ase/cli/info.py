"""show what a model file is and how it was made

Print MODEL's kind (outermost first, e.g. smoothed > ensemble), its metadata (species,
cutoff, layers, ensemble size and std_scale, relax protocol, per-atom inputs), the records of
the models it holds, and, for a file made by `symgnn compose`, the recipe with the SHA-256 of
every input. --json prints the file's whole info record instead.
"""

from __future__ import annotations

import argparse

from .common import MODEL_HELP


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--json", action="store_true", help="the whole info record, as JSON")


def run(args: argparse.Namespace) -> int:
    if args.json:
        import json

        from ..export import load_model

        print(json.dumps(load_model(args.model).info, indent=1, sort_keys=True))
        return 0
    from ..compose.recipe import describe_model

    print("\n".join(describe_model(args.model)))
    return 0
