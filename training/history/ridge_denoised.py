"""A ridge on the 5 Å graph, behind the thermal denoiser: can it join the default?

    .venv/bin/python training/ridge_denoised.py --cache /tmp/rd_cache --json training/results/ridge_denoised.json

The ridge baseline (kind ``ridge``) averages its radial densities over 10 Å, twice the
denoised default's neighbour list, so it cannot sit behind the denoiser in one model file.
This script measures the same descriptor on the 5 Å graph (densities within ``density_cutoff``
5 Å, averages within 5 Å, ``--hops`` rounds of them: the model's ``n_layers`` - 1), computed
on the positions the denoiser of ``--denoiser`` (a
``denoised`` model file) moves the atoms to, and the default's own prediction, for:

* fitting sets: the six relaxed training glasses alone, or with their thermal snapshots
  (``training/data/thermal``: T0, 300, 500, 700 K; labels are the relaxed glass's);
* validation: the relaxed glass, T0, 300, 500, 600 K snapshots (``valid`` only).

Prints the ridge's Pearson on each validation set, and that of blends ``(1 - b) * default +
b * ridge`` after the default's own smoothing (exp(-r/4 Å), cosine cutoff at 5 Å), for
b in a grid. The fit's alpha is picked on the relaxed validation glass (as the ridge run does).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from smooth_select import smooth  # the default's smoothing, in float64
from thermal_table import DATA, THERMAL

TRAIN_TEMPS = ["T0", "T300", "T500", "T700"]


def read(name: str):
    import ase.io

    if name.endswith(".extxyz"):
        return [ase.io.read(DATA / name)]
    return ase.io.read(THERMAL / f"{name}.extxyz.gz", index=":")


def frame_arrays(atoms, loaded, feat_model, with_pred: bool) -> dict[str, np.ndarray]:
    """Features on raw and denoised edges, the default's prediction, labels, graph pairs."""
    from symgnn_ase.data.descriptors import graph_features
    from symgnn_ase.data.graph import graph_from_atoms
    from symgnn_ase.train.ridge import denoised_edges

    g = graph_from_atoms(atoms, loaded.r_max, loaded.type_names, label_key="energy_barrier")
    m = loaded.module
    with torch.no_grad():
        pred = m(g.species, g.edge_index, g.edge_vec).double().numpy() if with_pred else np.zeros(0)
    vec = g.edge_vec.double()
    moved = denoised_edges(m, g.species, g.edge_index, g.edge_vec)
    out = {"pred": pred, "label": g.label.double().numpy(), "species": g.species.numpy()}
    for tag, v in (("raw", vec), ("dn", moved)):
        out[tag] = graph_features(feat_model, g.species, g.edge_index, v).numpy()
    r = torch.linalg.vector_norm(moved, dim=1).numpy()
    out["i"] = g.edge_index[1].numpy()
    out["j"] = g.edge_index[0].numpy()
    out["r"] = r
    return out


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--denoiser", default="symgnn_md_dn")
    p.add_argument("--hops", type=int, default=3, help="rounds of averaging (n_layers - 1)")
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    from symgnn_ase.data.descriptors import _model, descriptor_config
    from symgnn_ase.export import load_model
    from symgnn_ase.train.ridge import ridge_path

    torch.set_num_threads(1)
    loaded = load_model(args.denoiser)
    cfg = descriptor_config(r_max=loaded.r_max, density_cutoff=loaded.r_max, n_layers=args.hops + 1)
    feat_model = _model(cfg, torch.float64)
    args.cache.mkdir(parents=True, exist_ok=True)

    def arrays(name: str, with_pred: bool = False) -> list[dict[str, np.ndarray]]:
        path = args.cache / f"{name}.h{args.hops}.npz"
        if path.exists():
            with np.load(path) as z:
                n = int(z["n"])
                return [
                    {k[len(f"{f}:") :]: z[k] for k in z.files if k.startswith(f"{f}:")}
                    for f in range(n)
                ]
        res = [frame_arrays(a, loaded, feat_model, with_pred) for a in read(name)]
        flat = {f"{f}:{k}": v for f, d in enumerate(res) for k, v in d.items()}
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, n=len(res), **flat)
        tmp.replace(path)
        print(f"  cached {name}: {len(res)} frames", file=sys.stderr, flush=True)
        return res

    valid_names = {
        "relaxed": "valid.extxyz",
        "T0": "valid_T0",
        "300": "valid_T300",
        "500": "valid_T500",
        "600": "valid_T600",
    }
    valid = {k: arrays(v, True) for k, v in valid_names.items()}
    relaxed_train = [f for k in range(6) for f in arrays(f"train{k}.extxyz")]
    thermal_train = [f for k in range(6) for t in TRAIN_TEMPS for f in arrays(f"train{k}_{t}")]

    def smoothed(f: dict[str, np.ndarray], values: np.ndarray) -> np.ndarray:
        return smooth(values, f["i"], f["j"], f["r"], len(values), 4.0, loaded.r_max, "cosine")

    alphas = tuple(float(a) for a in np.logspace(-2, 5, 29))
    results = {}
    for fit_name, fit_frames in (
        ("relaxed", relaxed_train),
        ("relaxed+thermal", relaxed_train + thermal_train),
    ):
        for tag in ("raw", "dn"):
            x = np.concatenate([f[tag] for f in fit_frames])
            y = np.concatenate([f["label"] for f in fit_frames])
            mu, sd = x.mean(0), x.std(0)
            sd[sd == 0] = 1.0
            ym, ys = y.mean(), y.std()
            ws = ridge_path((x - mu) / sd, (y - ym) / ys, np.ones(len(y)), alphas)

            def predict(f, w, tag=tag, mu=mu, sd=sd, ys=ys, ym=ym):
                return ((f[tag] - mu) / sd) @ w * ys + ym

            scores = [
                pearson(predict(valid["relaxed"][0], w), valid["relaxed"][0]["label"]) for w in ws
            ]
            best = int(np.argmax(scores))
            w = ws[best]
            row = {"alpha": alphas[best]}
            for vname, vframes in valid.items():
                lab = np.concatenate([f["label"] for f in vframes])
                rp = np.concatenate([predict(f, w) for f in vframes])
                row[f"ridge {vname}"] = pearson(rp, lab)
                for b in (0.0, 0.1, 0.2, 0.3, 0.4):
                    blend = np.concatenate(
                        [smoothed(f, (1 - b) * f["pred"] + b * predict(f, w)) for f in vframes]
                    )
                    row[f"blend{b:.1f} {vname}"] = pearson(blend, lab)
            key = f"fit {fit_name}, features {tag}"
            results[key] = row
            print(key, f"alpha {row['alpha']:.3g}")
            for b in ["ridge"] + [f"blend{b:.1f}" for b in (0.0, 0.1, 0.2, 0.3, 0.4)]:
                print(f"  {b:9s}", " ".join(f"{v}:{row[f'{b} {v}']:.4f}" for v in valid))
            sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
