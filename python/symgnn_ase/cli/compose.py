"""build a composed model file from a TOML recipe

Build the model file a declarative recipe describes: its members (model files, run folders
or checkpoints, paths relative to the recipe's folder, or `{ bundled = NAME }`), the wrapper
(ensemble, residual, smooth, or none) with its parameters, and optionally the relax protocol
([relax] steps, alpha, cap, potential) and std_scale. The recipe's text and the SHA-256 of
every input are kept in the file's info: `symgnn info OUT` prints them. Recipes of the shipped
files are in training/recipes/.
"""

from __future__ import annotations

import argparse


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", metavar="RECIPE", help="the recipe, a TOML file")
    p.add_argument("-o", "--output", required=True, help="model file to write")


def run(args: argparse.Namespace) -> int:
    from ..compose.recipe import compose_recipe

    path = compose_recipe(args.recipe, args.output)
    print(f"wrote {path} from {args.recipe} (`symgnn info {path}` shows how it was made)")
    return 0
