"""Which members for the default's ensemble: equal-weight means of candidate members, scored on
validation after the default's smoothing.

    .venv/bin/python training/member_mix.py \\
        --member gnn=symgnn_md_dn --member ridge_dn=training/runs/ridge_dn/ridge_dn_denoised.pt \\
        --combo "current=gnn.0+gnn.1+gnn.2+gnn.3+ridge_dn" --json training/results/member_mix.json

Every ``--member NAME=MODEL`` (a model file or bundled name, meant to be one behind the thermal
denoiser so that every member sees the positions the default's members see) is run once on the
validation sets (the relaxed glass, its minimized copy T0 and the 300 / 500 / 600 K snapshots of
``training/data/thermal``); an ensemble file gives its members as ``NAME.0``, ``NAME.1``, ...
Every ``--combo LABEL=A+B+...`` is the mean of those members, smoothed as the default smooths
(exp(-r / 4 Å), cosine cutoff at r_max, on the input's pairs), and is printed with its Pearson on
each set and the selection score (relaxed + 300 K + 600 K) / 3 (MODEL_CARD "Which one is the
default"). Predictions are cached in ``--cache`` (one npz per member).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from smooth_select import smooth
from thermal_table import frames

SETS = ("relaxed", "T0", "300", "500", "600")


def member_predictions(model: str, cache: Path) -> dict[str, list[np.ndarray]]:
    """{set: per frame, [K, N] member predictions (K = 1 for a single model)}."""
    if cache.exists():
        with np.load(cache) as z:
            return {
                s: [z[k] for k in sorted(z.files, key=_frame) if k.split(":")[0] == s] for s in SETS
            }
    from symgnn_ase.data.graph import graph_from_atoms
    from symgnn_ase.export import load_model

    loaded = load_model(model)
    out: dict[str, list[np.ndarray]] = {}
    for s in SETS:
        out[s] = []
        for atoms in frames(s):
            g = graph_from_atoms(atoms, loaded.r_max, loaded.type_names, loaded.dtype)
            with torch.no_grad():
                m = loaded.module
                y = (
                    m.forward_members(g.species, g.edge_index, g.edge_vec)
                    if loaded.is_ensemble
                    else m(g.species, g.edge_index, g.edge_vec)[None]
                )
            out[s].append(y.double().numpy())
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **{f"{s}:{f}": y for s, ys in out.items() for f, y in enumerate(ys)})
    tmp.replace(cache)
    return out


def _frame(key: str) -> int:
    return int(key.split(":")[1])


def pairs(r_max: float) -> dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]]:
    """Per set and frame: (receivers, senders, lengths, labels) on the r_max neighbour list."""
    from symgnn_ase.data.graph import graph_from_atoms

    out = {}
    for s in SETS:
        out[s] = []
        for atoms in frames(s):
            g = graph_from_atoms(atoms, r_max, ["Cu", "Zr"], torch.float64, "energy_barrier")
            r = torch.linalg.vector_norm(g.edge_vec, dim=1).numpy()
            out[s].append((g.edge_index[1].numpy(), g.edge_index[0].numpy(), r, g.label.numpy()))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--member", action="append", required=True, metavar="NAME=MODEL")
    p.add_argument("--combo", action="append", required=True, metavar="LABEL=A+B+...")
    p.add_argument("--cache", type=Path, default=Path("/tmp/member_mix"))
    p.add_argument("--length", type=float, default=4.0, help="smoothing length (Å)")
    p.add_argument("--r-max", type=float, default=5.0)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    torch.set_num_threads(1)
    args.cache.mkdir(parents=True, exist_ok=True)
    preds: dict[str, dict[str, list[np.ndarray]]] = {}
    for spec in args.member:
        name, _, model = spec.partition("=")
        got = member_predictions(model, args.cache / f"{name}.npz")
        k = got[SETS[0]][0].shape[0]
        for j in range(k):
            preds[name if k == 1 else f"{name}.{j}"] = {
                s: [y[j] for y in ys] for s, ys in got.items()
            }
        print(f"{name}: {k} member(s)", file=sys.stderr, flush=True)
    graph = pairs(args.r_max)
    results = {}
    for spec in args.combo:
        label, _, expr = spec.partition("=")
        names = expr.split("+")
        unknown = [n for n in names if n not in preds]
        if unknown:
            raise SystemExit(
                f"--combo {label}: unknown member(s) {unknown}; known: {sorted(preds)}"
            )
        row = {}
        for s in SETS:
            ps, ts = [], []
            for f, (i, j, r, t) in enumerate(graph[s]):
                mean = np.mean([preds[n][s][f] for n in names], axis=0)
                ps.append(smooth(mean, i, j, r, len(mean), args.length, args.r_max, "cosine"))
                ts.append(t)
            row[s] = float(np.corrcoef(np.concatenate(ps), np.concatenate(ts))[0, 1])
        row["score"] = (row["relaxed"] + row["300"] + row["600"]) / 3
        results[label] = {"members": names, **row}
        print(f"{label:34s}", " ".join(f"{k}:{v:.4f}" for k, v in row.items()), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
