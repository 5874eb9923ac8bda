"""Study (issue 27): do the potential's per-atom energies help the ridge, by cross-validation?

    .venv/bin/python training/studies/pe_features_cv.py

The seven labelled glasses (train0-5, valid), leave-one-glass-out as `symgnn cv` folds them
(fold k: glass k scored, the next glass picks the ridge alpha, the other five fit). Feature
sets, each standardized over the fitting atoms:
- `base`: the ridge kind's coarse-grained radial densities (examples/train/ridge.yaml);
- `+pe`: base + each atom's energy under CuZr_mm.eam.fs (LAMMPS pe/atom, symgnn_ase.potential)
  and its exp(-r/L) neighbour averages, L = 1, 2, 4 Å, within 10 Å (the atom itself weight 1);
- `+pot`: the same with the data set's own `pot` column (the energy its authors recorded; a
  simulation does not have it: for comparison only);
- `pe only`: the four energy features alone.
Writes training/results/pe_features_cv.json and prints mean ± std over folds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "cuzr64"
GLASSES = ["train0", "train1", "train2", "train3", "train4", "train5", "valid"]
LENGTHS = (1.0, 2.0, 4.0)
OUT = ROOT / "training" / "results" / "pe_features_cv.json"


def neighbour_averages(atoms, values: np.ndarray, cutoff: float = 10.0) -> np.ndarray:
    from symgnn_ase.neighborlist import atoms_neighbors

    i, j, _s, d = atoms_neighbors(atoms, cutoff)
    r = np.linalg.norm(d, axis=1)
    cols = []
    for length in LENGTHS:
        w = np.exp(-r / length)
        num = values.copy() + np.bincount(i, weights=w * values[j], minlength=len(atoms))
        den = 1.0 + np.bincount(i, weights=w, minlength=len(atoms))
        cols.append(num / den)
    return np.stack(cols, axis=1)


def glass_features() -> dict[str, dict[str, np.ndarray]]:
    import ase.io
    import torch
    import yaml

    from symgnn_ase.data.descriptors import graph_features
    from symgnn_ase.data.graph import graph_from_atoms
    from symgnn_ase.nn import ModelConfig, build_model
    from symgnn_ase.potential.lammps import LammpsPotential

    cfg = yaml.safe_load((ROOT / "examples/train/ridge.yaml").read_text())["model"]
    model = build_model(ModelConfig.from_dict(cfg)).eval()
    out = {}
    with LammpsPotential("CuZr_mm.eam.fs") as pot:
        for name in GLASSES:
            atoms = ase.io.read(DATA / f"{name}.extxyz")
            g = graph_from_atoms(atoms, model.r_max, ["Cu", "Zr"], torch.float64, "energy_barrier")
            with torch.no_grad():
                base = graph_features(model, g.species, g.edge_index, g.edge_vec).double().numpy()
            pe = pot.energies(atoms)
            pot_col = atoms.arrays["pot"].astype(np.float64)
            out[name] = {
                "base": base,
                "pe": np.column_stack([pe, neighbour_averages(atoms, pe)]),
                "pot": np.column_stack([pot_col, neighbour_averages(atoms, pot_col)]),
                "y": atoms.arrays["energy_barrier"].astype(np.float64),
                "zr": (atoms.numbers == 40).astype(np.float64)[:, None],
            }
            print(
                f"{name}: {base.shape[1]} base features; pe vs pot Pearson "
                f"{np.corrcoef(pe, pot_col)[0, 1]:.4f}",
                flush=True,
            )
    return out


def fit_and_score(train: list[np.ndarray], ys: list[np.ndarray], inner, test) -> float:
    from symgnn_ase.train.metrics import pearson
    from symgnn_ase.train.ridge import DEFAULT_ALPHAS, ridge_path

    x, y = np.concatenate(train), np.concatenate(ys)
    mean, std = x.mean(0), x.std(0)
    std = np.where(std > 1e-9, std, 1.0)
    z = (x - mean) / std
    ym, ys_ = y.mean(), y.std()
    coefs = ridge_path(z, (y - ym) / ys_, np.ones(len(y)), DEFAULT_ALPHAS)
    zi = (inner[0] - mean) / std
    best = int(np.argmax([pearson(zi @ c, inner[1]) for c in coefs]))
    zt = (test[0] - mean) / std
    return pearson(zt @ coefs[best], test[1])


def main() -> int:
    feats = glass_features()
    sets = {
        "base": lambda f: f["base"],
        "+pe": lambda f: np.hstack([f["base"], f["pe"], f["pe"] * f["zr"]]),
        "+pot": lambda f: np.hstack([f["base"], f["pot"], f["pot"] * f["zr"]]),
        "pe only": lambda f: np.hstack([f["pe"], f["zr"], f["pe"] * f["zr"]]),
    }
    results = {}
    for label, make in sets.items():
        per_fold = {}
        for k, held in enumerate(GLASSES):
            inner = GLASSES[(k + 1) % len(GLASSES)]
            rest = [g for g in GLASSES if g not in (held, inner)]
            per_fold[held] = fit_and_score(
                [make(feats[g]) for g in rest],
                [feats[g]["y"] for g in rest],
                (make(feats[inner]), feats[inner]["y"]),
                (make(feats[held]), feats[held]["y"]),
            )
        v = np.array(list(per_fold.values()))
        results[label] = {
            "mean": float(v.mean()),
            "std": float(v.std(ddof=1)),
            "per_fold": per_fold,
        }
        print(
            f"{label:8s}: Pearson {v.mean():.4f} ± {v.std(ddof=1):.4f}  "
            + " ".join(f"{g}={p:.3f}" for g, p in per_fold.items()),
            flush=True,
        )
    base = np.array(list(results["base"]["per_fold"].values()))
    for label in ("+pe", "+pot"):
        d = np.array(list(results[label]["per_fold"].values())) - base
        results[label]["gain_over_base"] = {
            "mean": float(d.mean()),
            "std": float(d.std(ddof=1)),
            "folds_improved": int((d > 0).sum()),
        }
        print(
            f"{label}: gain over base {d.mean():+.4f} ± {d.std(ddof=1):.4f} "
            f"(paired over folds; {int((d > 0).sum())}/7 folds improved)"
        )
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
