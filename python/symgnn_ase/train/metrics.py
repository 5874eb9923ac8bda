"""Regression metrics reported everywhere: Pearson's r, MAE, RMSE."""

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
    err = np.asarray(pred, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    return {
        "pearson": pearson(pred, true),
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err * err))),
        "n": int(err.size),
    }
