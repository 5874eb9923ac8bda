"""The training loss of one frame: mean squared error, or for a shallow ensemble
(``model.readout_heads`` = M > 1, :mod:`symgnn_ase.nn.shallow`) a Gaussian negative
log-likelihood mixed with the mean's squared error.

For a shallow ensemble the model is trained on its M heads ``[M, N]``: per atom, the mean
``mu`` over the heads and their sample variance ``s2`` (M - 1 in the denominator, as the
exported spread), in standardized label units (labels / label std). The loss is

    (1 - w) * mean((mu - y)^2) + w * mean(0.5 * ((mu - y)^2 / (s2 + v0) + log(s2 + v0)))

with ``w = optim.nll_weight`` (0: the heads' mean trained as one model; 1: the likelihood
alone, Kellner & Ceriotti 2024) and ``v0 = optim.nll_var_floor`` (keeps the likelihood finite
while the heads still agree, e.g. just after they were widened from one head).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["frame_loss", "training_view"]


def frame_loss(
    pred: Tensor, label: Tensor, mask: Tensor | None, std: float, optim: dict[str, Any]
) -> Tensor:
    """The loss of one frame: ``pred`` [N] (one model) or [M, N] (shallow-ensemble heads)."""
    if pred.dim() == 1:
        err = (pred - label) / std
        if mask is not None:
            err = err[mask]
        return torch.mean(err * err)
    z = pred / std
    y = label / std
    if mask is not None:
        z = z[:, mask]
        y = y[mask]
    mu = z.mean(0)
    var = z.var(0) + float(optim.get("nll_var_floor", 1e-4))
    sq = (mu - y) ** 2
    nll = 0.5 * (sq / var + torch.log(var))
    w = float(optim.get("nll_weight", 0.5))
    return (1.0 - w) * sq.mean() + w * nll.mean()


class _Heads(nn.Module):
    """``forward`` = the wrapped shallow ensemble's ``forward_members`` (what the loss needs),
    so that the training step can be compiled like any model."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, species: Tensor, edge_index: Tensor, edge_vec: Tensor) -> Tensor:
        return self.model.forward_members(species, edge_index, edge_vec)


def training_view(model: nn.Module) -> nn.Module:
    """What a training step runs: the model, or a shallow ensemble's heads [M, N]."""
    if int(getattr(model, "ensemble_size", 1)) > 1 and hasattr(model, "forward_members"):
        return _Heads(model)
    return model
