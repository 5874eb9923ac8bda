"""Pick the smoothing length L and the cutoff form of ``symgnn smooth`` on the relaxed
validation glass only.

    .venv/bin/python training/studies/smooth_select.py --base symgnn_md_dn --json training/results/smooth_select.json

Predicts once with ``--base`` (a model file or bundled name) on ``valid.extxyz``, then applies
the smoothing of :mod:`symgnn_ase.compose.smooth` (``s_i = (p_i + sum_j w_ij p_j) / (1 + sum_j
w_ij)``, ``w = exp(-r / L) f_c(r)``, pairs of the model's neighbor list, ``f_c`` reaching 0 at
the model's ``r_max``) in float64 for every L and cutoff form, and prints the validation
Pearson. The pick is the highest Pearson over the grid (MODEL_CARD "Which one is the default");
``plain`` (a hard cut at r_max, not continuous) is printed for reference and not a candidate.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from thermal_table import frames  # the same validation glass as the thermal table

LENGTHS = [0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0]


def smooth(p: np.ndarray, i, j, r, n: int, length: float, r_cut: float, form: str) -> np.ndarray:
    """The model's smoothing (:func:`symgnn_ase.compose.smooth.smoothing_weight`, in float64) on
    receivers ``i`` and senders ``j`` at distances ``r``; ``plain``: a hard cut at ``r_cut``."""
    if form == "plain":
        w = np.exp(-r / length) * (r < r_cut)
    else:
        from symgnn_ase.compose.smooth import smoothing_weight

        w = smoothing_weight(
            torch.from_numpy(r),
            torch.tensor(length, dtype=torch.float64),
            torch.tensor(r_cut, dtype=torch.float64),
            form == "polynomial",
        ).numpy()
    return (p + np.bincount(i, w * p[j], n)) / (1.0 + np.bincount(i, w, n))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--base", default="symgnn_md_dn")
    p.add_argument("--lengths", type=float, nargs="+", default=LENGTHS)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    from symgnn_ase.data.graph import graph_from_atoms
    from symgnn_ase.export import load_model

    torch.set_num_threads(1)
    loaded = load_model(args.base)
    (atoms,) = frames("relaxed")
    g = graph_from_atoms(atoms, loaded.r_max, loaded.type_names)
    with torch.no_grad():
        pred = loaded.module(g.species, g.edge_index, g.edge_vec).double().numpy()
    label = atoms.arrays["energy_barrier"]
    j, i = g.edge_index.numpy()  # row 0 the sender, row 1 the receiver
    r = np.linalg.norm(g.edge_vec.double().numpy(), axis=1)

    def pearson(x):
        return float(np.corrcoef(x, label)[0, 1])

    results = {
        "base": str(args.base),
        "base_pearson": pearson(pred),
        "base_pred_std": float(pred.std()),
        "r_cut": loaded.r_max,
    }
    print(f"{args.base}: valid Pearson {results['base_pearson']:.4f}")
    best = None
    for form in ("cosine", "polynomial", "plain"):
        row = {}
        for length in args.lengths:
            s = smooth(pred, i, j, r, len(atoms), length, loaded.r_max, form)
            row[str(length)] = {"pearson": pearson(s), "pred_std": float(s.std())}
            if form != "plain" and (best is None or row[str(length)]["pearson"] > best[2]):
                best = (form, length, row[str(length)]["pearson"])
        results[form] = row
        print(form, " ".join(f"L={k}: {v['pearson']:.4f}" for k, v in row.items()))
    results["pick"] = {"cutoff": best[0], "length": best[1], "pearson": best[2]}
    print(f"pick: {best[0]} cutoff, L = {best[1]:g} Å (valid Pearson {best[2]:.4f})")
    if args.json:
        from symgnn_ase.outputs import write_text

        write_text(args.json, json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
