"""Pearson/MAE/RMSE of an exported model on labelled structures

Evaluate an exported model on structure files with a per-atom label array; --rotations N adds N
random rotations/reflections of each structure.
"""

from __future__ import annotations

import argparse
import json

from .common import MODEL_HELP, add_label, add_threads, check_threads


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("files", nargs="+", help="structure files with per-atom labels")
    add_label(p, "per-atom label array of the files")
    add_threads(p)
    p.add_argument("--rotations", type=int, default=0, help="random orthogonal copies per file")
    p.add_argument("--seed", type=int, default=0, help="seed of the random transforms")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")


def run(args: argparse.Namespace) -> int:
    if args.rotations < 0:
        raise ValueError(f"--rotations must be >= 0, got {args.rotations}")
    from ..export import load_model
    from ..outputs import check_output, write_text
    from ..runtime import torch_threads
    from ..train.evaluate import evaluate_files

    if args.json:  # refused before any work: not a folder, link, device; not an input
        check_output(args.json, [args.model, *args.files], what="--json")
    model = load_model(args.model)
    if args.json:
        check_output(args.json, [model.path, *args.files], what="--json")
    with torch_threads(check_threads(args)):
        res = evaluate_files(model, args.files, args.label, args.rotations, args.seed)
    for name, m in res["per_file"].items():
        line = f"{name:30s} n={m['n']:6d} pearson={m['pearson']:.4f} mae={m['mae']:.4f} rmse={m['rmse']:.4f}"
        if "spread_mean_eV" in m:
            line += f" spread_mean={m['spread_mean_eV']:.4f} spread_max={m['spread_max_eV']:.4f} eV"
        print(line)
    pm = res["pooled"]
    print(
        f"{'pooled':30s} n={pm['n']:6d} pearson={pm['pearson']:.4f} mae={pm['mae']:.4f} rmse={pm['rmse']:.4f}"
    )
    if "rotations" in res:
        r = res["rotations"]
        print(
            f"rotated/reflected x{r['n']}: pearson {r['pearson_mean']:.4f} ± {r['pearson_std']:.4f} "
            f"(min {r['pearson_min']:.4f}); per-atom spread mean {r['spread_mean_eV']:.4f} eV, "
            f"max {r['spread_max_eV']:.4f} eV"
        )
    if args.json:
        write_text(args.json, json.dumps(res, indent=2) + "\n", what="--json")
    return 0
