"""Validation of a network averaged with a ridge that reads the potential's per-atom energies
(issue 27), through the relax protocol against quench-then-predict, before the two are put in
one file: each model's predictions and their mean, on the validation glass and its 300/600 K
snapshots seen as the protocol moves them (K = 2: training/data/relaxed2), as they are, and
quenched. Prints pooled Pearson per set and the protocol / quench-then-predict ratio; writes
training/results/pe_ensemble_valid.json.

    .venv/bin/python training/studies/pe_ensemble_valid.py \\
        --models python/symgnn_ase/models/default.pt training/runs/ridge_pe5/ridge_pe5.pt \\
        --pairs 0,1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "training"))

from eval_relax_protocol import SETS, frames, predict  # noqa: E402

OUT = ROOT / "training" / "results" / "pe_ensemble_valid.json"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--pairs", nargs="*", default=[], help="i,j: also score the mean of two")
    p.add_argument("--moved", type=Path, default=ROOT / "training" / "data" / "relaxed2")
    p.add_argument("--cache", type=Path, default=Path("/tmp/symgnn_quenched_valid"))
    args = p.parse_args(argv)
    from symgnn_ase.export import load_model

    loaded = [load_model(m) for m in args.models]
    pairs = [tuple(int(k) for k in s.split(",")) for s in args.pairs]
    names = [Path(m).stem for m in args.models] + [
        f"mean({Path(args.models[i]).stem},{Path(args.models[j]).stem})" for i, j in pairs
    ]
    table: dict[str, dict[str, float]] = {n: {} for n in names}
    for view in ("protocol", "raw", "quenched"):
        for name in SETS:
            preds = [[] for _ in loaded]
            labels = []
            for atoms in frames(view, name, args.cache, args.moved):
                for k, m in enumerate(loaded):
                    preds[k].append(predict(m, atoms)[0])
                labels.append(np.asarray(atoms.arrays["energy_barrier"], dtype=np.float64))
            y = np.concatenate(labels)
            cols = [np.concatenate(p) for p in preds]
            cols += [0.5 * (cols[i] + cols[j]) for i, j in pairs]
            for n, c in zip(names, cols, strict=True):
                table[n][f"{view} {name}"] = float(np.corrcoef(c, y)[0, 1])
    for n, row in table.items():
        for t in ("300", "600"):
            row[f"ratio {t}"] = row[f"protocol {t}"] / row[f"quenched {t}"]
        print(f"{n:40s} " + "  ".join(f"{k} {v:.4f}" for k, v in row.items()), flush=True)
    old = json.loads(OUT.read_text()) if OUT.exists() else {}
    old.update(table)
    OUT.write_text(json.dumps(old, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
