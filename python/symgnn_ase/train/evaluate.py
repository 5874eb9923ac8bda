"""Evaluation: metrics of an eager model on labelled graphs (training), of an exported model on
structure files, and its spread over random rotations/reflections (``symgnn evaluate``)."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import torch

from ..data.graph import Graph, graph_from_atoms
from ..data.io import read_structures, refuse_prediction_as_label
from ..export import LoadedModel
from .metrics import regression_metrics

logger = logging.getLogger(__name__)

__all__ = ["random_orthogonal", "evaluate_files", "evaluate_graphs"]


def random_orthogonal(n: int, seed: int) -> np.ndarray:
    """``n`` Haar-random 3x3 orthogonal matrices, alternating det +1 and det -1."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 3, 3))
    for k in range(n):
        q, r = np.linalg.qr(rng.standard_normal((3, 3)))
        q = q * np.sign(np.diag(r))
        if np.linalg.det(q) < 0:
            q[:, 0] = -q[:, 0]
        out[k] = q if k % 2 == 0 else -q  # -q: a rotation composed with inversion
    return out


def _predict(
    model: LoadedModel, species, edge_index, edge_vec64: np.ndarray, node_inputs=None
) -> np.ndarray:
    with torch.no_grad():
        vec = torch.from_numpy(edge_vec64).to(model.dtype)
        if node_inputs is not None:
            return model.module(species, edge_index, vec, None, node_inputs).double().numpy()
        return model.module(species, edge_index, vec).double().numpy()


def _check_finite_labels(name: str, label: str, t: np.ndarray) -> None:
    """A warning naming the frame when some labels are not finite: those atoms are left out
    of the metrics."""
    bad = np.flatnonzero(~np.isfinite(t))
    if bad.size:
        k = int(bad[0])
        logger.warning(
            "%s: %d atom(s) have a non-finite `%s` label (first: atom %d, %s); they are left out "
            "of the metrics",
            name,
            bad.size,
            label,
            k,
            t[k],
        )


def evaluate_files(
    model: LoadedModel,
    paths: list[str],
    label: str = "energy_barrier",
    rotations: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Metrics per structure and pooled; with ``rotations`` > 0 also on transformed copies.

    A transformed copy applies an orthogonal matrix Q (rotation or reflection) to the
    whole structure: positions and cell both, so every edge vector becomes Q·D
    (formed in float64). The spread of an atom is the standard deviation of its
    prediction over the original and the N copies. A model with per-atom inputs (metadata
    ``node_inputs``) gets them from the potential its file names, on the copy its relax
    protocol moves (the structure it is scored on).
    """
    mats = random_orthogonal(rotations, seed) if rotations else np.empty((0, 3, 3))
    relaxer = source = None
    if model.node_inputs is not None:  # the inputs of the potential the file names, on the
        # copy its relax protocol moves (as the calculator does)
        from ..potential.forces import RelaxForces
        from ..potential.inputs import NodeInputSource

        relaxer = RelaxForces(model.relax, model_path=model.path)
        source = NodeInputSource(
            model.node_inputs, model_path=model.path, type_names=model.type_names, relax=relaxer
        )
    try:
        return _evaluate(model, paths, label, rotations, seed, mats, relaxer, source)
    finally:
        if source is not None:
            source.close()
            relaxer.close()


def _evaluate(
    model: LoadedModel,
    paths: list[str],
    label: str,
    rotations: int,
    seed: int,
    mats: np.ndarray,
    relaxer: Any,
    source: Any,
) -> dict[str, Any]:
    preds, trues, per_file = [], [], {}
    rot_preds: list[list[np.ndarray]] = []
    spreads = []
    for path in paths:
        frames = read_structures(path)
        for k, atoms in enumerate(frames):
            name = os.path.basename(path) + ("" if len(frames) == 1 else f"@{k}")
            ni = None
            if source is not None:
                try:
                    atoms = relaxer.relaxed(atoms)
                    ni = torch.from_numpy(source.values(atoms))
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
            refuse_prediction_as_label(atoms, label, name)
            try:
                g = graph_from_atoms(atoms, model.r_max, model.type_names, torch.float64, label)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
            vec = g.edge_vec.numpy()
            p = _predict(model, g.species, g.edge_index, vec, ni)
            t = g.label.double().numpy()
            _check_finite_labels(name, label, t)
            preds.append(p)
            trues.append(t)
            entry: dict[str, Any] = regression_metrics(p, t)
            if rotations:
                copies = [_predict(model, g.species, g.edge_index, vec @ q.T, ni) for q in mats]
                rot_preds.append(copies)
                stack = np.stack([p, *copies])
                spread = stack.std(axis=0)
                spreads.append(spread)
                entry["rotated"] = [regression_metrics(c, t)["pearson"] for c in copies]
                entry["spread_mean_eV"] = float(spread.mean())
                entry["spread_max_eV"] = float(spread.max())
            per_file[name] = entry
    result: dict[str, Any] = {
        "model": str(model.path),
        "pooled": regression_metrics(np.concatenate(preds), np.concatenate(trues)),
        "per_file": per_file,
    }
    if rotations:
        t_all = np.concatenate(trues)
        pooled_rot = [
            regression_metrics(np.concatenate([rp[k] for rp in rot_preds]), t_all)["pearson"]
            for k in range(rotations)
        ]
        s_all = np.concatenate(spreads)
        result["rotations"] = {
            "n": rotations,
            "seed": seed,
            "pearson_mean": float(np.mean(pooled_rot)),
            "pearson_std": float(np.std(pooled_rot)),
            "pearson_min": float(np.min(pooled_rot)),
            "spread_mean_eV": float(s_all.mean()),
            "spread_max_eV": float(s_all.max()),
        }
    return result


@torch.no_grad()
def evaluate_graphs(model: torch.nn.Module, graphs: list[Graph]) -> tuple[dict, list[np.ndarray]]:
    """Pooled and per-graph metrics of ``model`` (put in eval mode) on labelled graphs; on
    graphs with a ``baseline`` (training with ``data.baseline``), of baseline + model against
    the full label."""
    model.eval()
    preds, trues = [], []
    for g in graphs:
        p = g.run(model)
        if g.baseline is not None:
            p = p + g.baseline
        preds.append(p.numpy())
        trues.append(g.full_label.numpy())
    pooled = regression_metrics(np.concatenate(preds), np.concatenate(trues))
    per_file = {
        g.name: regression_metrics(p, t) for g, p, t in zip(graphs, preds, trues, strict=True)
    }
    return {"pooled": pooled, "per_file": per_file}, preds
