"""Build a model of any kind from its configuration."""

from __future__ import annotations

from typing import Any

from torch import nn

from .config import ModelConfig
from .symgnn import SymGNN

__all__ = ["build_model"]


def build_model(cfg: ModelConfig | dict[str, Any]) -> nn.Module:
    """A fresh model for ``cfg`` (a :class:`ModelConfig` or its dict form)."""
    if isinstance(cfg, dict):
        cfg = ModelConfig.from_dict(cfg)
    if cfg.kind == "equivariant":
        from .equivariant import EquivariantGNN

        return EquivariantGNN(cfg)
    if cfg.kind == "schnet":
        from .schnet import SchNet

        return SchNet(cfg)
    if cfg.kind == "ridge":
        from .descriptor import DescriptorRidge, DescriptorRidgeInputs

        return DescriptorRidgeInputs(cfg) if cfg.node_inputs else DescriptorRidge(cfg)
    if cfg.node_inputs:
        from .inputs import SymGNNInputs

        return SymGNNInputs(cfg)
    if cfg.readout_heads > 1:
        from .shallow import ShallowSymGNN

        return ShallowSymGNN(cfg)
    return SymGNN(cfg)
