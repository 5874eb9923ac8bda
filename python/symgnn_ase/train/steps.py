"""Pieces of a training step: weight snapshots and their moving average, position jitter, and
batch-norm handling."""

from __future__ import annotations

import logging

import torch

from ..data.graph import Graph

__all__ = [
    "copy_state",
    "ema_update",
    "jitter",
    "freeze_batchnorm",
    "recalibrate_batchnorm",
]

logger = logging.getLogger("symgnn_ase.train.loop")


def copy_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def ema_update(ema: dict[str, torch.Tensor], model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * weights; integer buffers (counters) are copied."""
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            ema[key].mul_(decay).add_(value.detach(), alpha=1.0 - decay)
        else:
            ema[key].copy_(value)


def jitter(g: Graph, sigma: float, gen: torch.Generator) -> torch.Tensor:
    """Edge vectors of ``g`` after displacing every atom by N(0, sigma^2) Å per axis."""
    if sigma <= 0.0:
        return g.edge_vec
    n = g.species.shape[0]
    delta = torch.randn((n, 3), generator=gen, dtype=g.edge_vec.dtype) * sigma
    return (
        g.edge_vec + delta.index_select(0, g.edge_index[0]) - delta.index_select(0, g.edge_index[1])
    )


def freeze_batchnorm(model: torch.nn.Module) -> None:
    """Batch-norm layers in inference mode (running statistics, not updated)."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


@torch.no_grad()
def recalibrate_batchnorm(model: torch.nn.Module, graphs: list[Graph]) -> None:
    """Batch-norm running statistics := their plain average over ``graphs`` (one pass)."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    for g in graphs:
        g.run(model)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    logger.info("batch-norm statistics recomputed over %d training frames", len(graphs))
