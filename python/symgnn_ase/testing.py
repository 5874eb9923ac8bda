"""Small helpers for the test suites: tiny models and tiny glasses made on the spot."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .export import export_model
from .nn.config import ModelConfig
from .nn.factory import build_model

__all__ = [
    "tiny_config",
    "make_tiny_model",
    "make_tiny_members",
    "make_nan_model",
    "random_glass",
]


def tiny_config(kind: str = "symgnn", **overrides) -> ModelConfig:
    """A small model of ``kind`` (narrow; r_max 5 Å, like the shipped kinds) for fast tests."""
    base = dict(kind=kind, node_dim=16, edge_dim=8, heads=[4, 2, 2, 1], decoder_dim=16, n_rbf=8)
    if kind == "equivariant":
        base.update(node_dim=8, heads=[], n_layers=3)
    elif kind == "schnet":
        base.update(heads=[], n_layers=3)
    elif kind == "ridge":  # densities within 3.5 Å, averaged within r_max = 5 Å
        base.update(heads=[], n_layers=2, n_rbf=6, rbf_max=3.4, density_cutoff=3.5)
    base.update(overrides)
    return ModelConfig(**base)


def make_tiny_model(path: str | os.PathLike, kind: str = "symgnn", seed: int = 0, **overrides):
    """Export a randomly initialised tiny model to ``path`` and return the eager model."""
    torch.manual_seed(seed)
    cfg = tiny_config(kind, **overrides)
    model = build_model(cfg)
    with torch.no_grad():
        model.label_mean.fill_(1.6)
        model.label_std.fill_(0.35)
    export_model(model, path, cfg.type_names, cfg.r_max, info={"kind": kind, "test": True})
    return model


def make_tiny_members(
    folder: str | os.PathLike,
    kinds: tuple[str, ...] = ("length", "symgnn", "equivariant"),
    seed: int = 0,
) -> list[str]:
    """Tiny models of ``kinds`` (seeds ``seed``, ``seed + 1``, ...) exported to
    ``folder/<kind>.pt``, e.g. the members of a test ensemble; their paths."""
    paths = []
    for k, kind in enumerate(kinds):
        path = Path(folder) / f"{kind}.pt"
        make_tiny_model(path, kind=kind, seed=seed + k)
        paths.append(str(path))
    return paths


def make_nan_model(path: str | os.PathLike, kind: str = "symgnn", seed: int = 0):
    """A tiny model whose every output is NaN (its label mean is NaN): a broken model file, for
    testing that non-finite barriers are an error everywhere."""
    torch.manual_seed(seed)
    cfg = tiny_config(kind)
    model = build_model(cfg)
    with torch.no_grad():
        model.label_mean.fill_(float("nan"))
        model.label_std.fill_(0.35)
    export_model(model, path, cfg.type_names, cfg.r_max, info={"kind": kind, "test": "nan"})
    return model


def random_glass(n: int = 200, density: float = 0.063, seed: int = 0, zr_fraction: float = 0.36):
    """A random Cu-Zr structure at glass density in a periodic cube (no overlaps < 2 Å)."""
    from ase import Atoms

    rng = np.random.default_rng(seed)
    length = (n / density) ** (1.0 / 3.0)
    pos: list[np.ndarray] = []
    while len(pos) < n:
        trial = rng.uniform(0, length, 3)
        if pos:
            d = np.asarray(pos) - trial
            d -= length * np.round(d / length)
            if np.min(np.einsum("ij,ij->i", d, d)) < 4.0:
                continue
        pos.append(trial)
    symbols = np.where(rng.random(n) < zr_fraction, "Zr", "Cu")
    return Atoms(symbols=list(symbols), positions=np.asarray(pos), cell=[length] * 3, pbc=True)
