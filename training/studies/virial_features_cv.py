"""Study (issue 27, item 2: "whatever else CV shows helps"): per-atom virial invariants of
CuZr_mm.eam.fs as ridge features beside the per-atom energy, by 7-fold leave-one-glass-out CV.

    .venv/bin/python training/studies/virial_features_cv.py

Folds and fitting as training/studies/pe_features_cv.py (fold k: glass k scored, the next glass
picks alpha, the other five fit; features standardized over the fitting atoms). Per-atom
quantities from LAMMPS on the glasses as stored: `pe` (pe/atom), `p` (the hydrostatic part of
stress/atom, -trace/3, bar·Å³), `tau` (the deviatoric magnitude, sqrt(3/2 s:s)); each with its
exp(-r/L) neighbour averages (L = 1, 2, 4 Å, within 10 Å, self weight 1) and their products
with the Zr indicator, added to the ridge kind's base features. Rotation invariant (trace and
the norm of the deviator). Writes training/results/virial_features_cv.json.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "training" / "results" / "virial_features_cv.json"


def _pe_study():
    spec = importlib.util.spec_from_file_location(
        "pe_features_cv", ROOT / "training/studies/pe_features_cv.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def per_atom(atoms) -> dict[str, np.ndarray]:
    """pe, hydrostatic and deviatoric per-atom virial of CuZr_mm.eam.fs (LAMMPS)."""
    from symgnn_ase.potential.eam import lammps_potential_path
    from symgnn_ase.potential.lammps import gather, open_lammps

    lmp = open_lammps(atoms, lammps_potential_path("CuZr_mm.eam.fs"))
    try:
        lmp.commands_string(
            "atom_modify sort 0 0.0\ncompute pe all pe/atom\ncompute st all stress/atom NULL\nrun 0"
        )
        n = len(atoms)
        pe = gather(lmp, "c_pe", n, 1)
        s = gather(lmp, "c_st", n, 6)  # xx yy zz xy xz yz
    finally:
        lmp.close()
    trace = s[:, :3].sum(1)
    dev = s[:, :3] - trace[:, None] / 3
    tau = np.sqrt(1.5 * ((dev**2).sum(1) + 2 * (s[:, 3:] ** 2).sum(1)))
    return {"pe": pe, "p": -trace / 3, "tau": tau}


def main() -> int:
    import ase.io
    import torch
    import yaml

    from symgnn_ase.data.descriptors import graph_features
    from symgnn_ase.data.graph import graph_from_atoms
    from symgnn_ase.nn import ModelConfig, build_model

    study = _pe_study()
    cfg = yaml.safe_load((ROOT / "examples/train/ridge.yaml").read_text())["model"]
    model = build_model(ModelConfig.from_dict(cfg)).eval()
    feats = {}
    for name in study.GLASSES:
        atoms = ase.io.read(study.DATA / f"{name}.extxyz")
        g = graph_from_atoms(atoms, model.r_max, ["Cu", "Zr"], torch.float64, "energy_barrier")
        with torch.no_grad():
            base = graph_features(model, g.species, g.edge_index, g.edge_vec).double().numpy()
        q = per_atom(atoms)
        feats[name] = {
            "base": base,
            "y": atoms.arrays["energy_barrier"].astype(np.float64),
            "zr": (atoms.numbers == 40).astype(np.float64)[:, None],
            **{k: np.column_stack([v, study.neighbour_averages(atoms, v)]) for k, v in q.items()},
        }
        print(f"{name}: corr(pe, p) {np.corrcoef(q['pe'], q['p'])[0, 1]:.3f}", flush=True)

    def cols(f, keys):
        extra = [f[k] for k in keys] + [f[k] * f["zr"] for k in keys]
        return np.hstack([f["base"], *extra])

    sets = {
        "base": [],
        "+pe": ["pe"],
        "+p": ["p"],
        "+pe+p": ["pe", "p"],
        "+pe+p+tau": ["pe", "p", "tau"],
    }
    results = {}
    glasses = study.GLASSES
    for label, keys in sets.items():
        per_fold = {}
        for k, held in enumerate(glasses):
            inner = glasses[(k + 1) % len(glasses)]
            rest = [g for g in glasses if g not in (held, inner)]
            per_fold[held] = study.fit_and_score(
                [cols(feats[g], keys) for g in rest],
                [feats[g]["y"] for g in rest],
                (cols(feats[inner], keys), feats[inner]["y"]),
                (cols(feats[held], keys), feats[held]["y"]),
            )
        v = np.array(list(per_fold.values()))
        results[label] = {
            "mean": float(v.mean()),
            "std": float(v.std(ddof=1)),
            "per_fold": per_fold,
        }
        print(f"{label:10s}: {v.mean():.4f} ± {v.std(ddof=1):.4f}", flush=True)
    ref = np.array(list(results["+pe"]["per_fold"].values()))
    for label in sets:
        d = np.array(list(results[label]["per_fold"].values())) - ref
        results[label]["gain_over_pe"] = {
            "mean": float(d.mean()),
            "std": float(d.std(ddof=1)),
            "folds_improved": int((d > 0).sum()),
        }
        print(f"{label:10s} vs +pe: {d.mean():+.4f} ± {d.std(ddof=1):.4f} ({(d > 0).sum()}/7)")
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
