"""Regression metrics reported everywhere: Pearson's r, MAE, RMSE, prediction spread.

Labels that are not finite (NaN: an atom without a label) are left out; ``n`` counts the
labelled atoms and ``n_unlabelled`` the rest.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pearson", "regression_metrics"]


def pearson(pred: np.ndarray, true: np.ndarray) -> float:
    """Pearson's correlation coefficient (nan if either side is constant)."""
    p = np.asarray(pred, dtype=np.float64) - np.mean(pred)
    t = np.asarray(true, dtype=np.float64) - np.mean(true)
    den = np.sqrt(np.sum(p * p) * np.sum(t * t))
    return float(np.sum(p * t) / den) if den > 0 else float("nan")


def regression_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    mask = np.isfinite(true)
    out: dict[str, float] = {}
    if mask.all():
        p, t = pred, true
    else:
        p, t = pred[mask], true[mask]
        out["n_unlabelled"] = int(true.size - p.size)
    if p.size == 0:
        nan = float("nan")
        return {"pearson": nan, "mae": nan, "rmse": nan, "n": 0, "pred_std": nan, **out}
    err = p - t
    return {
        "pearson": pearson(p, t),
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err * err))),
        "n": int(err.size),
        "pred_std": float(np.std(p)),
        **out,
    }
