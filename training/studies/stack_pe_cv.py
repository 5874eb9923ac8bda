"""Cross-validated average of a network and the ridge with the potential's per-atom energy
(issue 27): per fold, the mean of the fold's network (default: training/cv/length_budget) and
its ridge fit (default: training/cv/ridge_pe), both trained without the held-out glass, scored
on that glass. Prints the per-fold Pearson of each and of their mean, and adds the study to
training/results/stack_pe_cv.json under "NET+RIDGE".

    .venv/bin/python training/studies/stack_pe_cv.py [--net length_budget] [--ridge ridge_pe5]
        [--also equivariant_budget]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "cuzr64"
CV = ROOT / "training" / "cv"
OUT = ROOT / "training" / "results" / "stack_pe_cv.json"


def main(argv: list[str] | None = None) -> int:
    import argparse

    import ase.io

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--net", default="length_budget", help="CV study of the network (training/cv)")
    p.add_argument("--ridge", default="ridge_pe", help="CV study of the ridge (training/cv)")
    p.add_argument("--also", nargs="*", default=[], help="more CV studies in the mean")
    args = p.parse_args(argv)

    def fold_model(study: str, fold: str, tmp: str):
        path = CV / study / fold / "model.pt"
        if not path.exists():
            path = export_run(CV / study / fold / "run", Path(tmp) / f"{study}_{fold}.pt")
        return load_model(path)

    from symgnn_ase.calculator import get_energy_barriers
    from symgnn_ase.export import load_model
    from symgnn_ase.train.export import export_run

    folds = sorted(f.name for f in (CV / args.ridge).glob("fold*_*"))
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fold in folds:
            glass = fold.split("_", 1)[1]
            atoms = ase.io.read(DATA / f"{glass}.extxyz")
            y = np.asarray(atoms.arrays["energy_barrier"], dtype=np.float64)
            net = get_energy_barriers(atoms, fold_model(args.net, fold, tmp))
            ridge = get_energy_barriers(atoms, fold_model(args.ridge, fold, tmp))
            extra = [get_energy_barriers(atoms, fold_model(s, fold, tmp)) for s in args.also]
            r = {
                "net": float(np.corrcoef(net, y)[0, 1]),
                "ridge": float(np.corrcoef(ridge, y)[0, 1]),
                **{
                    s: float(np.corrcoef(e, y)[0, 1]) for s, e in zip(args.also, extra, strict=True)
                },
                "mean": float(np.corrcoef(np.mean([net, ridge, *extra], axis=0), y)[0, 1]),
            }
            rows[glass] = r
            print(
                f"{glass:8s} {args.net} {r['net']:.4f}  {args.ridge} {r['ridge']:.4f}  "
                f"mean {r['mean']:.4f}",
                flush=True,
            )
    summary = {}
    for key in ("net", "ridge", *args.also, "mean"):
        v = np.array([r[key] for r in rows.values()])
        summary[key] = {"mean": float(v.mean()), "std": float(v.std(ddof=1))}
    for other in ("net", "ridge", *args.also):
        gain = np.array([r["mean"] - r[other] for r in rows.values()])
        summary[f"mean_minus_{other}"] = {
            "mean": float(gain.mean()),
            "std": float(gain.std(ddof=1)),
            "folds_up": int((gain > 0).sum()),
        }
    print(json.dumps(summary, indent=1))
    old = json.loads(OUT.read_text()) if OUT.exists() else {}
    old = {k: v for k, v in old.items() if "+" in k}  # studies by name
    old["+".join([args.net, args.ridge, *args.also])] = {"per_fold": rows, "summary": summary}
    OUT.write_text(json.dumps(old, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
