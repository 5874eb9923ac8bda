"""A shallow ensemble: one SymGNN network whose decoder ends in M heads.

After Kellner & Ceriotti (2024), "Uncertainty quantification by direct propagation of shallow
ensembles": the network up to the decoder's last layer is shared, and the last linear layer has
M outputs. The barrier is the mean of the M heads, its uncertainty their spread; trained with a
Gaussian negative log-likelihood on that mean and spread (``train/shallow_loss.py``), the spread
learns where the mean errs. The cost is that of one network.

:class:`ShallowSymGNN` keeps the ensemble contract of ``docs/contracts.md`` exactly as
:class:`symgnn_ase.compose.ensemble.Ensemble` does, so everything that runs an ensemble file (the
LAMMPS compute's ``std yes``, the ASE calculator's ``energy_barrier_std``, ``symgnn predict``)
runs it unchanged: ``forward``/``readout`` return the mean over the heads, ``forward_std`` /
``readout_std`` ``[2, N]`` the mean and the sample standard deviation (M - 1 in the denominator)
times the buffer ``std_scale`` (1 until calibrated), ``forward_members`` / ``readout_members``
``[M, N]`` every head. The node state between layers is the single network's.
"""

import torch
from torch import Tensor

from ..compose.spread import MeanAndSpread
from .base import OptTensor
from .config import ModelConfig
from .symgnn import SymGNN

__all__ = ["WIDEN_NOISE", "ShallowSymGNN", "widen_readout"]

#: noise (standardized label units) added to each head widened from one (``init`` of a
#: single-head model into a shallow ensemble: train/loop.py, train/readout.py)
WIDEN_NOISE = 0.3


class ShallowSymGNN(MeanAndSpread, SymGNN):
    """SymGNN (or its ablations) with ``cfg.readout_heads`` = M > 1 decoder heads."""

    ensemble_size: int

    def __init__(self, cfg: ModelConfig, std_scale: float = 1.0) -> None:
        if cfg.readout_heads < 2:
            raise ValueError(f"a shallow ensemble has readout_heads >= 2, got {cfg.readout_heads}")
        self.check_std_scale(std_scale)
        super().__init__(cfg)
        self.ensemble_size = int(cfg.readout_heads)
        self.register_buffer("std_scale", torch.tensor(float(std_scale)))

    @torch.jit.export
    def readout_members(self, h: Tensor) -> Tensor:
        """Every head's barrier [M, N] (eV)."""
        y = self.decoder(h) * self.label_std + self.label_mean  # [N, M]
        return y.transpose(0, 1).contiguous()

    def _features(
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_weight: OptTensor
    ) -> Tensor:
        h, e = self.embed(species, edge_index, edge_vec)
        for layer in range(self.n_layers):
            h, e = self.interact(layer, h, e, edge_index, edge_weight)
        return h

    @torch.jit.export
    def forward_members(
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_weight: OptTensor = None
    ) -> Tensor:
        return self.readout_members(self._features(species, edge_index, edge_vec, edge_weight))


def widen_readout(
    state: dict[str, Tensor], model: torch.nn.Module, noise: float, seed: int
) -> dict[str, Tensor]:
    """A single-head state dict made loadable into the shallow ensemble ``model``.

    The decoder's last layer ``[1, H]`` (and its bias) is copied to every one of the M heads,
    plus Gaussian noise of standard deviation ``noise`` (times 1/sqrt(H) on the weights, so
    that each head's output moves by about ``noise`` standardized label units), seeded;
    ``std_scale`` starts at 1. A state that already has M heads is returned as it is.
    """
    own = model.state_dict()
    out = dict(state)
    gen = torch.Generator().manual_seed(int(seed))
    for key, want in own.items():
        if key not in out and key == "std_scale":
            out[key] = torch.ones_like(want)
            continue
        have = out.get(key)
        if have is None or have.shape == want.shape or not key.startswith("decoder."):
            continue
        if have.shape[0] != 1 or have.shape[1:] != want.shape[1:]:
            raise ValueError(
                f"init: {key} has shape {list(have.shape)}, which neither matches the model's "
                f"{list(want.shape)} nor is one head to widen to {want.shape[0]}"
            )
        scale = noise / (want.shape[1] ** 0.5) if want.dim() == 2 else noise
        eps = torch.randn(want.shape, generator=gen, dtype=torch.float64) * scale
        out[key] = (have.double().expand_as(want) + eps).to(want.dtype)
    return out
