"""Which blocks of the descriptor carry the ridge baseline: refit on subsets of the features.

    .venv/bin/python training/studies/ridge_ablation.py [--json training/results/ridge_ablation.json]

Features of examples/train/ridge.yaml (raw radial densities + their averages with L = 1, 2,
4 Å) for train0-5 and valid, then for each subset of blocks the same fit as
``symgnn_ase.train.ridge`` (global label standardization, features standardized on the
training atoms, alpha on the same grid, selected on valid.extxyz). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from symgnn_ase.data.descriptors import descriptor_features
from symgnn_ase.data.io import read_structure
from symgnn_ase.nn.config import ModelConfig
from symgnn_ase.train.config import load_config
from symgnn_ase.train.metrics import pearson
from symgnn_ase.train.ridge import DEFAULT_ALPHAS, ridge_path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "cuzr64"
SUBSETS = {
    "raw densities only": ["raw"],
    "raw + L = 1 Å": ["raw", "L1"],
    "raw + L = 2 Å": ["raw", "L2"],
    "raw + L = 4 Å": ["raw", "L4"],
    "L = 1, 2, 4 Å (no raw)": ["L1", "L2", "L4"],
    "all (the `ridge` model)": ["raw", "L1", "L2", "L4"],
}


def _fit(x, y, xv, yv, cols) -> tuple[float, float]:
    """(best valid Pearson, its alpha) of ridge on columns ``cols``."""
    a, b = x[:, cols], xv[:, cols]
    mean, std = a.mean(0), a.std(0)
    std = np.where(std > 1e-6 * std.max(), std, 1.0)
    t = (y - y.mean()) / y.std()
    coefs = ridge_path((a - mean) / std, t, np.ones(len(t)), DEFAULT_ALPHAS)
    scores = [pearson(((b - mean) / std) @ c, yv) for c in coefs]
    k = int(np.argmax(scores))
    return scores[k], DEFAULT_ALPHAS[k]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = ModelConfig.from_dict(load_config(ROOT / "examples" / "train" / "ridge.yaml")["model"])
    xs, ys = [], []
    for k in range(6):
        atoms = read_structure(DATA / f"train{k}.extxyz")
        xs.append(descriptor_features(atoms, cfg))
        ys.append(np.asarray(atoms.arrays["energy_barrier"], dtype=float))
        logging.info("train%d: features %s", k, xs[-1].shape)
    valid = read_structure(DATA / "valid.extxyz")
    xv = descriptor_features(valid, cfg)
    yv = np.asarray(valid.arrays["energy_barrier"], dtype=float)
    x, y = np.concatenate(xs), np.concatenate(ys)
    d = xv.shape[1] // (1 + len(cfg.smooth_lengths))
    blocks = {"raw": range(0, d)}
    for n, length in enumerate(cfg.smooth_lengths, start=1):
        blocks[f"L{length:g}"] = range(n * d, (n + 1) * d)
    results = {}
    print("| features | columns | valid Pearson | alpha |")
    print("| --- | --- | --- | --- |")
    for name, parts in SUBSETS.items():
        cols = [c for p in parts for c in blocks[p]]
        r, alpha = _fit(x, y, xv, yv, cols)
        results[name] = {"blocks": parts, "columns": len(cols), "pearson": r, "alpha": alpha}
        print(f"| {name} | {len(cols)} | {r:.4f} | {alpha:.3g} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
