"""Coarse-grained structural descriptors of every atom, as a reusable feature matrix.

Species-resolved radial densities (Gaussians centred 2.2-5.0 Å, sigma 0.15 Å, per neighbour
species, within 5.5 Å) and their averages over the neighbours within 10 Å with weights
exp(-r/L), L = 1, 2, 4 Å (the definition is in :mod:`symgnn_ase.nn.descriptor`, which also
serves them as the exported model kind ``ridge``, so the features used for fitting and the
ones the model file computes in ASE or LAMMPS are the same code)::

    from symgnn_ase.data.descriptors import descriptor_features, feature_names
    X = descriptor_features(atoms)          # float64 [N, 240]
    names = feature_names()                 # "rho:Zr@3.10", "L2:rho:Cu@2.50", "self:Zr", ...

One 8000-atom glass takes a few seconds on one core (neighbour list within 10 Å included).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..nn.config import ModelConfig

logger = logging.getLogger(__name__)

__all__ = [
    "DESCRIPTOR_DEFAULTS",
    "descriptor_config",
    "descriptor_features",
    "feature_names",
    "graph_features",
    "stack_features",
]

# the descriptor of issue 14: r_max is the averaging radius, n_rbf Gaussians 0.1 Å apart
DESCRIPTOR_DEFAULTS: dict[str, Any] = {
    "kind": "ridge",
    "r_max": 10.0,
    "n_layers": 2,
    "heads": [],
    "n_rbf": 29,
    "rbf_min": 2.2,
    "rbf_max": 5.0,
    "rbf_sigma": 0.15,
    "density_cutoff": 5.5,
    "smooth_lengths": [1.0, 2.0, 4.0],
}


def descriptor_config(**overrides: Any) -> ModelConfig:
    """The ``ridge`` model configuration of the default descriptor, with ``overrides``."""
    return ModelConfig.from_dict(DESCRIPTOR_DEFAULTS | overrides)


def _model(cfg: ModelConfig, dtype: torch.dtype) -> torch.nn.Module:
    from ..nn.descriptor import DescriptorRidge

    if cfg.kind != "ridge":
        raise ValueError(
            f"descriptor features need a model config of kind 'ridge', got {cfg.kind!r}"
        )
    return DescriptorRidge(cfg, dtype).eval()


@torch.no_grad()
def graph_features(
    model: torch.nn.Module, species, edge_index, edge_vec, node_inputs=None
) -> torch.Tensor:
    """The feature matrix [N, feature_dim] of a graph, from a ``ridge`` model's layers;
    ``node_inputs`` (float64 ``[N, n_inputs]``) for a model with ``model.node_inputs``."""
    if node_inputs is None:
        h, e = model.embed(species, edge_index, edge_vec)
    else:
        h, e = model.embed(species, edge_index, edge_vec, node_inputs)
    for layer in range(model.n_layers):
        h, e = model.interact(layer, h, e, edge_index)
    return h


def descriptor_features(
    atoms, cfg: ModelConfig | None = None, dtype: torch.dtype = torch.float64
) -> np.ndarray:
    """float64 [N, F] descriptor features of ``atoms`` (an ``ase.Atoms``), computed in
    ``dtype`` on the project's neighbour list; ``cfg`` a ``ridge`` configuration (default:
    :func:`descriptor_config`). Columns are named by :func:`feature_names`."""
    from .graph import graph_from_atoms

    cfg = descriptor_config() if cfg is None else cfg
    model = _model(cfg, dtype)
    g = graph_from_atoms(atoms, cfg.r_max, cfg.type_names, dtype=dtype)
    h = graph_features(model, g.species, g.edge_index, g.edge_vec)
    logger.debug("descriptor features: %d atoms, %d edges", g.n_atoms, g.edge_vec.shape[0])
    return h.double().numpy()


def feature_names(cfg: ModelConfig | None = None) -> list[str]:
    """One name per feature column: ``self:S`` (one-hot species), ``rho:S@R`` (density of
    species S at R Å), and ``L<L>:`` before either for the average with length L
    (``L<L>x<k>:`` for that average after k hops, when ``n_layers`` > 2)."""
    cfg = descriptor_config() if cfg is None else cfg
    centers = np.linspace(cfg.rbf_min, cfg.rbf_max, cfg.n_rbf)
    base = [f"self:{s}" for s in cfg.type_names]
    base += [f"rho:{s}@{c:.2f}" for s in cfg.type_names for c in centers]
    names = list(base)
    for hop in range(1, cfg.n_layers):
        tag = "" if hop == 1 else f"x{hop}"  # L2x3: the length-2 average after three hops
        for length in cfg.smooth_lengths:
            names += [f"L{length:g}{tag}:{b}" for b in base]
    return names


def stack_features(
    frames: Sequence[Any], cfg: ModelConfig | None = None, dtype: torch.dtype = torch.float64
) -> np.ndarray:
    """The features of several structures, one block of rows per structure."""
    return np.concatenate([descriptor_features(a, cfg, dtype) for a in frames], axis=0)
