"""``symgnn evaluate MODEL FILE...``: metrics of an exported model, and its rotation spread."""

from __future__ import annotations

import argparse
import json
import logging
import os
from typing import Any

import numpy as np
import torch

from ._data import read_structures
from ._export import LoadedModel, load_model
from ._graph import graph_from_atoms
from ._metrics import regression_metrics

logger = logging.getLogger(__name__)

__all__ = ["register", "run", "random_orthogonal", "evaluate_files"]


def random_orthogonal(n: int, seed: int) -> np.ndarray:
    """``n`` Haar-random 3x3 orthogonal matrices, alternating det +1 and det -1."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 3, 3))
    for k in range(n):
        q, r = np.linalg.qr(rng.standard_normal((3, 3)))
        q = q * np.sign(np.diag(r))
        if np.linalg.det(q) < 0:
            q[:, 0] = -q[:, 0]
        out[k] = q if k % 2 == 0 else -q  # -q: a rotation composed with inversion
    return out


def _predict(model: LoadedModel, species, edge_index, edge_vec64: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        vec = torch.from_numpy(edge_vec64).to(model.dtype)
        return model.module(species, edge_index, vec).double().numpy()


def evaluate_files(
    model: LoadedModel,
    paths: list[str],
    label: str = "energy_barrier",
    rotations: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Metrics per structure and pooled; with ``rotations`` > 0 also on transformed copies.

    A transformed copy applies an orthogonal matrix Q (rotation or reflection) to the
    whole structure: positions and cell both, so every edge vector becomes Q·D
    (formed in float64). The spread of an atom is the standard deviation of its
    prediction over the original and the N copies.
    """
    preds, trues, per_file = [], [], {}
    rot_preds: list[list[np.ndarray]] = []
    spreads = []
    mats = random_orthogonal(rotations, seed) if rotations else np.empty((0, 3, 3))
    for path in paths:
        frames = read_structures(path)
        for k, atoms in enumerate(frames):
            name = os.path.basename(path) + ("" if len(frames) == 1 else f"@{k}")
            g = graph_from_atoms(atoms, model.r_max, model.type_names, torch.float64, label)
            vec = g.edge_vec.numpy()
            p = _predict(model, g.species, g.edge_index, vec)
            t = g.label.double().numpy()
            preds.append(p)
            trues.append(t)
            entry: dict[str, Any] = regression_metrics(p, t)
            if rotations:
                copies = [_predict(model, g.species, g.edge_index, vec @ q.T) for q in mats]
                rot_preds.append(copies)
                stack = np.stack([p, *copies])
                spread = stack.std(axis=0)
                spreads.append(spread)
                entry["rotated"] = [regression_metrics(c, t)["pearson"] for c in copies]
                entry["spread_mean_eV"] = float(spread.mean())
                entry["spread_max_eV"] = float(spread.max())
            per_file[name] = entry
    result: dict[str, Any] = {
        "model": str(model.path),
        "pooled": regression_metrics(np.concatenate(preds), np.concatenate(trues)),
        "per_file": per_file,
    }
    if rotations:
        t_all = np.concatenate(trues)
        pooled_rot = [
            regression_metrics(np.concatenate([rp[k] for rp in rot_preds]), t_all)["pearson"]
            for k in range(rotations)
        ]
        s_all = np.concatenate(spreads)
        result["rotations"] = {
            "n": rotations,
            "seed": seed,
            "pearson_mean": float(np.mean(pooled_rot)),
            "pearson_std": float(np.std(pooled_rot)),
            "pearson_min": float(np.min(pooled_rot)),
            "spread_mean_eV": float(s_all.mean()),
            "spread_max_eV": float(s_all.max()),
        }
    return result


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="Pearson/MAE/RMSE of an exported model on labelled structures",
        description="Evaluate an exported model on structure files with a per-atom label "
        "array; --rotations N adds N random rotations/reflections of each structure.",
    )
    p.add_argument("model", help="exported model file or bundled name (default, ...)")
    p.add_argument("files", nargs="+", help="structure files with per-atom labels")
    p.add_argument("--label", default="energy_barrier", help="per-atom label array name")
    p.add_argument("--rotations", type=int, default=0, help="random orthogonal copies per file")
    p.add_argument("--seed", type=int, default=0, help="seed of the random transforms")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.rotations < 0:
        raise ValueError(f"--rotations must be >= 0, got {args.rotations}")
    model = load_model(args.model)
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
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2)
    return 0
