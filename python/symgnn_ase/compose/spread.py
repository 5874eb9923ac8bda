"""The one mean-and-spread of the contract's ensemble methods (``docs/contracts.md``).

Every model file that holds several estimates of each atom's barrier (an ensemble of models,
a shallow ensemble's heads, a smoothed ensemble's smoothed members) defines
``readout_members(h) -> [K, N]`` and ``forward_members(...) -> [K, N]`` and the buffer
``std_scale``; :class:`MeanAndSpread` turns them into the rest of the ensemble methods.
"""

import torch
from torch import Tensor

from ..nn.base import OptTensor

__all__ = ["MeanAndSpread", "check_std_scale"]


def check_std_scale(std_scale: float) -> None:
    """A ValueError unless ``std_scale`` is a finite number > 0."""
    try:
        ok = 0 < float(std_scale) < float("inf")
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"std_scale must be a finite number > 0, got {std_scale}")


class MeanAndSpread:
    """The ensemble methods of the contract over ``readout_members`` / ``forward_members``
    (``[K, N]``, K estimates of every atom's barrier), for an ``nn.Module`` that defines those
    two and the buffer ``std_scale`` (listed before its model base, so that these override the
    base's ``readout`` and ``forward``): ``readout``/``forward`` the mean over the K,
    ``readout_std``/``forward_std`` ``[2, N]`` the mean and the sample standard deviation
    (K - 1 in the denominator) times ``std_scale``. :class:`~.ensemble.Ensemble`,
    :class:`~.smooth.Smoothed` and :class:`~symgnn_ase.nn.shallow.ShallowSymGNN` use it."""

    check_std_scale = staticmethod(check_std_scale)

    @torch.jit.export
    def readout(self, h: Tensor) -> Tensor:
        return self.readout_members(h).mean(0)

    @torch.jit.export
    def readout_std(self, h: Tensor) -> Tensor:
        return self._mean_std(self.readout_members(h))

    def _mean_std(self, y: Tensor) -> Tensor:
        """[K, N] predictions -> [2, N]: their mean and scaled sample standard deviation."""
        return torch.stack([y.mean(0), y.std(0) * self.std_scale], 0)

    @torch.jit.export
    def forward_std(
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_weight: OptTensor = None
    ) -> Tensor:
        return self._mean_std(self.forward_members(species, edge_index, edge_vec, edge_weight))

    def forward(
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_weight: OptTensor = None
    ) -> Tensor:
        return self.forward_members(species, edge_index, edge_vec, edge_weight).mean(0)
