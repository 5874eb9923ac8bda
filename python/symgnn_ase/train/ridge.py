"""Fit the descriptor baseline (model kind ``ridge``) into a run folder, in closed form.

The features of every training frame come from the model itself (its ``embed`` and two
``interact`` layers, in the model's dtype, float64: exactly what the exported file computes in
ASE or LAMMPS), then:
one global label standardization (mean and std of every training label), features
standardized over the training atoms, and ridge regression ``min |Z w - y|^2 + alpha |w|^2``
(sklearn's convention; group weights of ``data.train`` weight the rows) for every alpha of
a grid, solved once through the eigendecomposition of ``Z^T Z``. The alpha with the best
validation score (``data.selection`` over ``data.valid``, as in training) is kept.

The run folder holds what a training run holds, so ``symgnn export RUN`` and
``training/make_tables.py`` treat it like any other: ``best.pt`` (model state and config),
``metrics.csv`` (one row per alpha, the ``learning curve`` of a closed-form fit),
``alpha_curve.png``, ``parity.png``, ``summary.json``, ``config.*``, ``git_commit.txt``.

    python -m symgnn_ase.train.ridge examples/train/ridge.yaml [--run-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.descriptors import graph_features
from ..nn.base import set_input_scale
from ..nn.config import ModelConfig
from ..nn.factory import build_model
from .checkpoints import atomic_save
from .config import check_run_dir, expand_files, load_config
from .datasets import check_labels, data_hashes, named_graphs
from .metrics import regression_metrics
from .node_inputs import training_inputs

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_ALPHAS", "fit_ridge", "ridge_path", "main"]

DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-3, 5, 33))


def _features(
    model: torch.nn.Module,
    files: list[str],
    data: dict[str, Any],
    inputs: Any = None,
):
    """(readout features [n, F] float64, labels [n] float64) of the labelled atoms of
    ``files``; ``inputs`` (:class:`~.node_inputs.TrainingInputs`) gives the node inputs of a model that takes them."""
    xs, ys = [], []
    for path in files:
        dtype = model.centers.dtype
        graphs = named_graphs([path], model.r_max, data["type_names"], data["label"], torch.float64)
        frame_inputs = [None] * len(graphs) if inputs is None else inputs.frames(path)
        if len(frame_inputs) != len(graphs):  # pragma: no cover - the same reader
            raise ValueError(f"{path}: {len(graphs)} graphs but {len(frame_inputs)} frames")
        for g, fi in zip(graphs, frame_inputs, strict=True):
            check_labels(g, data["label"], data["partial_labels"], data["label_range"])
            vec = g.edge_vec.to(dtype)
            node_inputs = None if fi is None else torch.from_numpy(fi[0])
            with torch.no_grad():
                h = graph_features(model, g.species, g.edge_index, vec, node_inputs)
                h = model.readout_features(h).double().numpy()
            y = g.label.double().numpy()
            keep = np.isfinite(y)
            xs.append(h[keep])
            ys.append(y[keep])
            logger.info("%s: %d atoms, %d edges", g.name, g.n_atoms, g.edge_vec.shape[0])
    return np.concatenate(xs), np.concatenate(ys)


def ridge_path(
    z: np.ndarray, t: np.ndarray, weights: np.ndarray, alphas: tuple[float, ...]
) -> np.ndarray:
    """Ridge solutions [len(alphas), F] of ``min sum_n weights_n (z_n w - t_n)^2 + alpha |w|^2``
    (``z`` centred: no intercept)."""
    zw = z * weights[:, None]
    gram = z.T @ zw
    rhs = zw.T @ t
    evals, evecs = np.linalg.eigh(gram)
    proj = evecs.T @ rhs
    return np.stack([evecs @ (proj / (evals + a)) for a in alphas])


def fit_ridge(
    config_path: str | os.PathLike,
    run_dir: str | os.PathLike | None = None,
    alphas: tuple[float, ...] = DEFAULT_ALPHAS,
) -> Path:
    """Fit the ``ridge`` model of the config; returns the run folder (see module docstring)."""
    t0 = time.perf_counter()
    cfg = load_config(config_path)
    if run_dir is not None:
        cfg["run_dir"] = str(run_dir)
    if cfg["model"] is None or cfg["model"]["kind"] != "ridge":
        kind = None if cfg["model"] is None else cfg["model"]["kind"]
        raise ValueError(f"{config_path}: fit_ridge needs `model.kind: ridge`, got {kind!r}")
    if not alphas or any(not (a > 0 and np.isfinite(a)) for a in alphas):
        raise ValueError(f"alphas must be finite numbers > 0, got {list(alphas)}")
    if cfg["data"]["baseline"] is not None:
        raise ValueError(
            f"{config_path}: data.baseline ({cfg['data']['baseline']!r}) is for network training "
            "(`symgnn train`); a ridge fit learns the labels themselves"
        )
    out = Path(cfg["run_dir"])
    if (out / "best.pt").exists():
        raise ValueError(f"run folder {out} already holds a fit (best.pt); choose another run_dir")
    check_run_dir(config_path, out)
    mcfg = ModelConfig.from_dict(cfg["model"])
    data = dict(cfg["data"], type_names=mcfg.type_names)
    hashes = data_hashes(cfg["data"])
    threads = torch.get_num_threads()
    if cfg["threads"] > 0:
        torch.set_num_threads(cfg["threads"])
    try:
        model = build_model(mcfg).eval()
        inputs = training_inputs(mcfg, cfg["data"], config_path)
        spec = None
        if inputs is not None:  # standardization and stats over the training frames
            train_files = [f for g in data["train"] for f in expand_files(g["files"])]
            spec, in_mean, in_std = inputs.spec(train_files)
            set_input_scale(model, in_mean, in_std)
        xs, ys, ws = [], [], []
        for group in data["train"]:
            x, y = _features(model, expand_files(group["files"]), data, inputs)
            xs.append(x)
            ys.append(y)
            ws.append(np.full(len(y), float(group["weight"])))
        x, y, w = np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)
        valid = [(os.path.basename(f), *_features(model, [f], data, inputs)) for f in data["valid"]]
    finally:
        torch.set_num_threads(threads)
    t_features = time.perf_counter() - t0

    label_mean, label_std = float(y.mean()), float(y.std())
    if not label_std > 0:
        raise ValueError(f"training labels have no spread (std {label_std}); nothing to fit")
    wn = w / w.sum()
    mean = wn @ x
    std = np.sqrt(wn @ (x - mean) ** 2)
    std = np.where(std > 1e-6 * max(float(std.max()), 1e-30), std, 1.0)  # constant columns
    z = (x - mean) / std
    t = (y - label_mean) / label_std
    bias = float(wn @ t)  # 0 unless group weights differ
    coefs = ridge_path(z, t - bias, w, tuple(alphas))

    history, best = [], None
    for alpha, coef in zip(alphas, coefs, strict=True):
        row: dict[str, Any] = {"alpha": alpha}
        fit = (z @ coef + bias) * label_std + label_mean
        row["train_pearson"] = regression_metrics(fit, y)["pearson"]
        scores = []
        for name, xv, yv in valid:
            p = (((xv - mean) / std) @ coef + bias) * label_std + label_mean
            m = regression_metrics(p, yv)
            row.update({f"pearson:{name}": m["pearson"], f"mae:{name}": m["mae"]})
            scores.append(m["pearson"])
        row["valid_pearson"] = scores[0] if data["selection"] == "first" else float(np.mean(scores))
        history.append(row)
        if best is None or row["valid_pearson"] > history[best]["valid_pearson"]:
            best = len(history) - 1
    assert best is not None
    alpha = float(alphas[best])
    with torch.no_grad():
        model.feature_mean.copy_(torch.from_numpy(mean))
        model.feature_std.copy_(torch.from_numpy(std))
        model.linear.weight.copy_(torch.from_numpy(coefs[best])[None, :])
        model.linear.bias.fill_(bias)
        model.label_mean.fill_(label_mean)
        model.label_std.fill_(label_std)
    elapsed = time.perf_counter() - t0
    sets, preds = {}, {}
    for name, xv, yv in valid:  # the model's own numbers, from the stored features
        with torch.no_grad():
            p = model.linear_readout(torch.from_numpy(xv).to(model.centers.dtype))
            p = p.double().numpy()
        preds[name] = (p, yv)
        sets[name] = regression_metrics(p, yv)
    first = valid[0][0]
    metrics = {
        "score": history[best]["valid_pearson"],
        "selection": data["selection"],
        "sets": sets,
        "per_file": sets,
        "pooled": sets[first],
        "alpha": alpha,
    }
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(config_path, out / ("config" + Path(config_path).suffix))
    from .resume import git_commit as _git_commit

    (out / "git_commit.txt").write_text(_git_commit() + "\n")
    atomic_save(
        {
            "model": model.state_dict(),
            "config": cfg,
            "epoch": 1,
            "metrics": metrics,
            "data_sha256": hashes,
            "label_mean": label_mean,
            "label_std": label_std,
            "elapsed": elapsed,
            "alpha": alpha,
            # the file's `node_inputs` metadata (train/export.py writes it)
            **({"node_inputs": spec.to_json()} if spec is not None else {}),
        },
        out / "best.pt",
    )
    _write_outputs(out, history, best, preds[first], first, metrics, elapsed, t_features)
    logger.info("ridge fit %s: alpha %.3g, valid %s", out, alpha, json.dumps(sets))
    return out


def _write_outputs(
    out: Path,
    history: list[dict[str, Any]],
    best: int,
    pred_true: tuple[np.ndarray, np.ndarray],
    name: str,
    metrics: dict[str, Any],
    elapsed: float,
    t_features: float,
) -> None:
    import csv

    from ..outputs import save_figure
    from .plots import parity_plot

    with open(out / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    parity_plot(
        pred_true[0],
        pred_true[1],
        out / "parity.png",
        title=f"{name}, ridge alpha {metrics['alpha']:.3g}: r = {metrics['pooled']['pearson']:.4f}",
    )
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 4), layout="constrained")
    ax = fig.subplots()
    alphas = [h["alpha"] for h in history]
    ax.semilogx(alphas, [h["train_pearson"] for h in history], label="train")
    ax.semilogx(alphas, [h["valid_pearson"] for h in history], label="valid (selection)")
    ax.axvline(history[best]["alpha"], color="k", lw=0.8, ls="--")
    ax.set_xlabel("ridge alpha")
    ax.set_ylabel("Pearson r")
    ax.legend()
    save_figure(fig, out / "alpha_curve.png", dpi=120)
    summary = {
        "stop_reason": "closed-form fit",
        "epochs": 1,
        "best_epoch": 1,
        "alpha": metrics["alpha"],
        "valid": metrics,
        "elapsed_to_best": elapsed,
        "train_seconds": elapsed,
        "feature_seconds": t_features,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fit the descriptor + ridge baseline")
    parser.add_argument("config", help="training config with model.kind: ridge")
    parser.add_argument("--run-dir", default=None, help="run folder (default: the config's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = fit_ridge(args.config, run_dir=args.run_dir)
    print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
