"""Pick the step ``alpha`` of the thermal denoiser on the validation glass (issue 12).

    .venv/bin/python training/denoise_select.py --base symgnn_md --alphas 0 0.05 0.1 0.15

Wraps ``--base`` (a model file or bundled name) with the force network of ``--run``
(``best.pt`` of ``training/train_denoiser.py``) for every ``alpha`` and prints the pooled
Pearson and prediction std on the relaxed validation glass, its minimized copy and its
300/500/600/700 K snapshots (``training/data/thermal/valid_*``), plus the selection score:
the mean of the relaxed, 300 K and 600 K Pearsons (MODEL_CARD "Which one is the default").
``--json`` writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from thermal_table import ROOT, frames  # the same validation frames as the thermal table

COLUMNS = ["relaxed", "T0", "300", "500", "600", "700"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--base", default="symgnn_md")
    p.add_argument("--run", type=Path, default=ROOT / "training" / "runs" / "denoiser")
    p.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.15])
    p.add_argument("--max-step", type=float, default=0.3)
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--columns", nargs="+", default=COLUMNS)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    from symgnn_ase.data.graph import graph_from_atoms
    from symgnn_ase.denoise import build_denoised

    torch.set_num_threads(1)
    results = {}
    graphs = {}
    for alpha in args.alphas:
        model, loaded, _ = build_denoised(args.base, args.run, alpha, args.steps, args.max_step)
        row = {}
        for col in args.columns:
            if col not in graphs:
                graphs[col] = [
                    (
                        graph_from_atoms(a, loaded.r_max, loaded.type_names),
                        a.arrays["energy_barrier"],
                    )
                    for a in frames(col)
                ]
            with torch.no_grad():
                preds = [model(g.species, g.edge_index, g.edge_vec).numpy() for g, _ in graphs[col]]
            pred = np.concatenate(preds)
            label = np.concatenate([b for _, b in graphs[col]])
            row[col] = {
                "pearson": float(np.corrcoef(pred, label)[0, 1]),
                "pred_std": float(pred.std()),
            }
        score = np.mean([row[c]["pearson"] for c in ("relaxed", "300", "600") if c in row])
        results[alpha] = {"columns": row, "score": float(score)}
        cells = " | ".join(f"{c} {v['pearson']:.3f} ({v['pred_std']:.3f})" for c, v in row.items())
        print(f"alpha {alpha:g}: {cells} | score {score:.4f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"base": args.base, "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
