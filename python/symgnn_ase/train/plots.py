"""Matplotlib figures written by training and evaluation (PNG, no display needed; plain
``Figure`` objects: no pyplot state, the process's backend is left alone)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..outputs import save_figure

__all__ = ["learning_curve", "parity_plot"]


def learning_curve(history: list[dict[str, Any]], path: Path) -> None:
    from matplotlib.figure import Figure

    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots(1, 2)
    ax[0].plot(epochs, [h["train_loss"] for h in history])
    ax[0].set_yscale("log")
    ax[0].set_xlabel("epoch")
    ax[0].set_ylabel("train loss (MSE, standardized)")
    ax[1].plot(epochs, [h["valid_pearson"] for h in history])
    ax[1].set_xlabel("epoch")
    ax[1].set_ylabel("valid Pearson r")
    save_figure(fig, path, dpi=120)


def parity_plot(pred: np.ndarray, true: np.ndarray, path: Path, title: str = "") -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 5), layout="constrained")
    ax = fig.subplots()
    ax.hexbin(true, pred, gridsize=60, mincnt=1, cmap="viridis")
    lo = float(min(true.min(), pred.min()))
    hi = float(max(true.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel("ARTn barrier (eV)")
    ax.set_ylabel("predicted barrier (eV)")
    ax.set_title(title)
    save_figure(fig, path, dpi=120)
