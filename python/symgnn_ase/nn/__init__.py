"""The models: their configuration, the SymGNN, equivariant, SchNet and descriptor + ridge kinds,
the fused-operator bridge.

``build_model(cfg)`` makes a fresh model of any kind; every kind exposes the
exported-model contract of ``docs/contracts.md`` (``embed``, ``interact``,
``readout``, ``forward``) through their common base ``BarrierModel`` (``base.py``).
"""

from __future__ import annotations

from .base import BarrierModel
from .config import MODEL_KINDS, ModelConfig
from .descriptor import DescriptorRidge
from .equivariant import EquivariantGNN
from .factory import build_model
from .schnet import SchNet
from .symgnn import SymGNN

__all__ = [
    "MODEL_KINDS",
    "ModelConfig",
    "BarrierModel",
    "SymGNN",
    "EquivariantGNN",
    "SchNet",
    "DescriptorRidge",
    "build_model",
]
