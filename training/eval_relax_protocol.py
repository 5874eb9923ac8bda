"""Validation of models through the relax protocol, next to no steps and quench-then-predict.

    .venv/bin/python training/eval_relax_protocol.py --models python/symgnn_ase/models/symgnn_length.pt \\
        training/runs/default_shallow/default.pt --out training/runs/default_shallow/validation.json

Columns (pooled Pearson over the frames of each): the validation glass (relaxed) and its NVT
snapshots at 300 K and 600 K (training/data/thermal), each seen three ways:

- ``protocol``: moved by the relax protocol (training/data/relaxed4, made by
  training/make_relaxed_frames.py: K = 4, alpha 0.12 A^2/eV, cap 0.3 A, CuZr_mm.eam.fs);
- ``raw``: as they are (no steps);
- ``quenched``: fully minimized with the same potential before predicting (the relaxed glass's
  minimized copy is ``valid_T0``; the snapshots are quenched here, CG to 1e-3 eV/A, cached in
  ``--cache``).

Per column also the prediction spread (std of the predictions over atoms) and, for an ensemble
file, the mean predicted std, the mean z^2 of (prediction - label) / std and the fraction of
atoms within 1 and 2 std. ``--calibrate`` prints the std_scale that makes the mean z^2 1 on the
protocol frames pooled (relaxed, 300 K, 600 K): sqrt(mean z^2) with the file's own scale removed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "cuzr64"
THERMAL = ROOT / "training" / "data" / "thermal"
RELAXED4 = ROOT / "training" / "data" / "relaxed4"
SETS = ("relaxed", "300", "600")


def frames(view: str, name: str, cache: Path, moved: Path = RELAXED4) -> list:
    import ase.io

    if view == "protocol":
        stem = "valid" if name == "relaxed" else f"valid_T{name}"
        return ase.io.read(moved / f"{stem}.extxyz.gz", index=":")
    if view == "raw":
        if name == "relaxed":
            return [ase.io.read(DATA / "valid.extxyz")]
        return ase.io.read(THERMAL / f"valid_T{name}.extxyz.gz", index=":")
    if name == "relaxed":
        return ase.io.read(THERMAL / "valid_T0.extxyz.gz", index=":")
    path = cache / f"valid_T{name}_quenched.extxyz"
    if not path.exists():
        from symgnn_ase.potential.eam import lammps_potential_path
        from symgnn_ase.potential.quench import QuenchSettings, quench_lammps

        pot = lammps_potential_path("CuZr_mm.eam.fs")
        done = [
            quench_lammps(a, pot, QuenchSettings(fmax=1e-3, max_steps=3000))
            for a in frames("raw", name, cache)
        ]
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.extxyz")
        ase.io.write(tmp, done)
        tmp.replace(path)
    return ase.io.read(path, index=":")


# one source of per-atom inputs (an in-process LAMMPS) per model file, kept for the run
_SOURCES: dict[str, object] = {}


def _node_inputs(loaded, atoms):
    """The per-atom inputs of a model with metadata node_inputs, from its potential."""
    import torch

    from symgnn_ase.potential.inputs import NodeInputSource

    key = str(loaded.path)
    if key not in _SOURCES:
        _SOURCES[key] = NodeInputSource(
            loaded.node_inputs, model_path=loaded.path, type_names=loaded.type_names
        )
    return torch.from_numpy(_SOURCES[key].values(atoms))


def predict(loaded, atoms) -> tuple[np.ndarray, np.ndarray | None]:
    """The model on the frame as given (already moved, or quenched); a model with per-atom
    inputs (metadata node_inputs) gets them from its potential on that same frame."""
    import torch

    from symgnn_ase.data.graph import graph_from_atoms

    g = graph_from_atoms(atoms, loaded.r_max, loaded.type_names, loaded.dtype)
    args = [g.species, g.edge_index, g.edge_vec]
    if loaded.node_inputs is not None:
        args += [None, _node_inputs(loaded, atoms)]
    with torch.inference_mode():
        if loaded.is_ensemble:
            out = loaded.module.forward_std(*args).double()
            return out[0].numpy(), out[1].numpy()
        return loaded.module(*args).double().numpy(), None


def evaluate(path: str, views: list[str], cache: Path, moved: Path = RELAXED4) -> dict:
    from symgnn_ase.export import load_model

    loaded = load_model(path)
    scale = float(loaded.info.get("std_scale", 1.0)) if loaded.is_ensemble else None
    out: dict = {"model": path, "std_scale": scale}
    z2_protocol = []
    for view in views:
        for name in SETS:
            preds, stds, labels = [], [], []
            for atoms in frames(view, name, cache, moved):
                p, s = predict(loaded, atoms)
                preds.append(p)
                labels.append(np.asarray(atoms.arrays["energy_barrier"], dtype=np.float64))
                if s is not None:
                    stds.append(s)
            p, y = np.concatenate(preds), np.concatenate(labels)
            row = {
                "pearson": float(np.corrcoef(p, y)[0, 1]),
                "rmse": float(np.sqrt(np.mean((p - y) ** 2))),
                "mae": float(np.mean(np.abs(p - y))),
                "pred_spread": float(np.std(p)),
                "label_spread": float(np.std(y)),
                "frames": len(preds),
            }
            if stds:
                s = np.concatenate(stds)
                z = (p - y) / s
                row |= {
                    "mean_std": float(np.mean(s)),
                    "mean_z2": float(np.mean(z * z)),
                    "within_1std": float(np.mean(np.abs(z) <= 1)),
                    "within_2std": float(np.mean(np.abs(z) <= 2)),
                    "std_err_pearson": float(np.corrcoef(s, np.abs(p - y))[0, 1]),
                }
                if view == "protocol":
                    z2_protocol.append(z * z)
            out[f"{view} {name}"] = row
            print(f"{Path(path).name:28s} {view:9s} {name:8s} " + json.dumps(row), flush=True)
    if z2_protocol:
        mean_z2 = float(np.mean(np.concatenate(z2_protocol)))
        out["calibration"] = {
            "mean_z2_protocol_pooled": mean_z2,
            "std_scale_for_z2_1": float(scale * np.sqrt(mean_z2)),
        }
        print(json.dumps(out["calibration"]), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--views", nargs="+", default=["protocol", "raw", "quenched"])
    p.add_argument("--cache", type=Path, default=Path("/tmp/symgnn_quenched_valid"))
    p.add_argument("--out", type=Path, default=None, help="results JSON (merged per model)")
    p.add_argument(
        "--moved",
        type=Path,
        default=RELAXED4,
        help="folder of the protocol frames (make_relaxed_frames.py --out; default K = 4)",
    )
    p.add_argument("--tag", default="", help="suffix of the model's key in --out")
    args = p.parse_args(argv)
    bad = sorted(set(args.views) - {"protocol", "raw", "quenched"})
    if bad:
        raise ValueError(f"--views must be among protocol, raw, quenched; got {bad}")
    import torch

    torch.set_num_threads(1)
    results = {}
    if args.out is not None and args.out.exists():
        results = json.loads(args.out.read_text())
    for path in args.models:
        if not Path(path).is_file():
            raise FileNotFoundError(f"model file not found: {path}")
        key = os.path.relpath(Path(path).resolve(), ROOT) + args.tag
        results[key] = evaluate(path, args.views, args.cache, args.moved)
        if args.out is not None:
            from symgnn_ase.outputs import write_text

            write_text(args.out, json.dumps(results, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
