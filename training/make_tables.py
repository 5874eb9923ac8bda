"""Print the MODEL_CARD.md tables from the run folders and evaluation JSONs in training/.

    python training/make_tables.py

Reads training/runs/<run>/{summary.json,metrics.csv} and
training/results/<run>_valid.json (written by `symgnn evaluate ... --json`).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
KINDS = {
    "symgnn": "SymGNN (learned O(3) distribution, 4 EGAT layers)",
    "raw": "ablation: no symmetrization (raw vectors)",
    "length": "ablation: edge length only (invariant)",
    "equivariant": "equivariant (PaiNN-style, 3 layers), first recipe",
    "equivariant_noise": "equivariant + position noise 0.05 Å (bundled `equivariant`)",
    "length_noise": "edge length + position noise 0.05 Å",
    "length_ema": "edge length + weight averaging (EMA 0.99)",
}


def main() -> None:
    print(
        "| model | valid Pearson | MAE (eV) | RMSE (eV) | rotated ×8 Pearson | spread mean / max (eV) | params | best epoch / epochs | train time to best |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind, label in KINDS.items():
        run = HERE / "runs" / kind
        res_path = HERE / "results" / f"{kind}_valid.json"
        if not (run / "summary.json").exists() or not res_path.exists():
            continue
        summary = json.loads((run / "summary.json").read_text())
        res = json.loads(res_path.read_text())
        rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
        pm, rot = res["pooled"], res["rotations"]
        from symgnn_ase.export import load_model

        n_par = load_model(res["model"]).info.get("n_parameters", "?")
        print(
            f"| {label} | {pm['pearson']:.4f} | {pm['mae']:.3f} | {pm['rmse']:.3f} | "
            f"{rot['pearson_mean']:.4f} ± {rot['pearson_std']:.4f} | "
            f"{rot['spread_mean_eV']:.2g} / {rot['spread_max_eV']:.2g} | {n_par} | "
            f"{summary['best_epoch']} / {len(rows)} | {summary['elapsed_to_best'] / 60:.0f} min |"
        )


if __name__ == "__main__":
    main()
