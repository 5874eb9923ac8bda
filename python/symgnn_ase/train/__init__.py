"""Training: config, loop, checkpoints, evaluation, metrics, plots, and export of a run.

``train(config)`` runs a YAML/TOML config into a run folder; ``export_run(run, out)``
turns it into a TorchScript model file. See ``docs/layout.md``.
"""

from __future__ import annotations

from .checkpoints import atomic_save, load_checkpoint
from .config import OPTIM_DEFAULTS, load_config
from .evaluate import evaluate_files, evaluate_graphs, random_orthogonal
from .export import export_run, model_from_checkpoint
from .loop import train
from .metrics import pearson, regression_metrics

__all__ = [
    "OPTIM_DEFAULTS",
    "atomic_save",
    "evaluate_files",
    "evaluate_graphs",
    "export_run",
    "load_checkpoint",
    "load_config",
    "model_from_checkpoint",
    "pearson",
    "random_orthogonal",
    "regression_metrics",
    "train",
]
