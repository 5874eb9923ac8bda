"""Spatial smoothing of a barrier model's per-atom predictions (``symgnn smooth``).

The barrier is a smooth field in space: neighbouring atoms have correlated barriers, and a
model's error is partly noise from atom to atom. Averaging each atom's prediction with its
neighbours', weighted by distance,

    s_i = (p_i + sum_j w(r_ij) p_j) / (1 + sum_j w(r_ij)),
    w(r) = exp(-r / L) f_c(r),

with ``f_c`` a cutoff that goes smoothly to 0 at ``r_cut`` (the model's ``r_max``), raises the
validation Pearson of every model tried (``MODEL_CARD.md``). :class:`Smoothed` does it inside
the model file, behind any barrier model (ensembles included), so
the calculator and the LAMMPS compute run it unchanged.

Export contract (``docs/contracts.md``): the node state is ``[base state (F_b) | predictions
(K)]`` (K = 1 for one model, the members for an ensemble) and the edge state ``[r_ij (1) |
base edge state]``, ``r_ij`` the lengths of the input ``edge_vec``. The base's layers run on
their slices; one more layer writes each atom's prediction(s) into the node state (ghost atoms
get theirs from their owners in the exchange that follows), and a last one replaces them by
the smoothed values, for the receivers. ``readout`` is their mean; an ensemble's
``readout_std`` is the mean and the sample standard deviation of the smoothed members (times
the base's ``std_scale``). ``forward``, ``forward_members`` and ``forward_std`` (the
calculator's calls) give the same numbers the short way: the base's own ``forward`` (or
``forward_members``), then the average with the lengths of ``edge_vec``, without carrying them
through the base's layers. The weights depend on distances only: an exactly invariant base
stays exactly invariant. The pairs are those of the input's neighbor list.
"""

import math
from typing import Any

import torch
from torch import Tensor, nn

from .base import BarrierModel, OptTensor

__all__ = ["CUTOFFS", "Smoothed", "SmoothedEnsemble", "smoothing_weight"]

#: the cutoff forms ``f_c`` of the weight (both 1 at r = 0 and 0 from r_cut on, with a zero
#: first derivative there): ``cosine`` 0.5 (cos(pi r / r_cut) + 1); ``polynomial``
#: 1 - 10 x^3 + 15 x^4 - 6 x^5 with x = r / r_cut (zero second derivative too)
CUTOFFS = ("cosine", "polynomial")


def smoothing_weight(r: Tensor, length: Tensor, r_cut: Tensor, polynomial: bool) -> Tensor:
    """``exp(-r / length) f_c(r)``, 0 from ``r_cut`` on (see :data:`CUTOFFS`)."""
    x = torch.clamp(r / r_cut, max=1.0)
    if polynomial:
        fc = 1.0 - x * x * x * (10.0 - 15.0 * x + 6.0 * x * x)
    else:
        fc = 0.5 * (torch.cos(math.pi * x) + 1.0)
    return torch.exp(-r / length) * fc * (r < r_cut).to(r.dtype)


def check_length(length: float) -> None:
    """A ValueError naming the value when ``length`` is not a finite number > 0."""
    try:
        ok = math.isfinite(float(length)) and float(length) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"smoothing length L (Å) must be a finite number > 0, got {length}")


class Smoothed(BarrierModel):
    """A barrier model whose per-atom predictions are averaged over their neighbours (see the
    module doc).

    ``base`` is any module with the contract's ``embed``/``interact``/``readout`` (an exported
    model, an ensemble, ...); ``base_layers`` and ``base_dim`` are its ``n_layers`` and
    ``feature_dim``; ``r_cut`` the cutoff of the weight (the model's ``r_max``).
    """

    base_dim: int
    base_layers: int
    n_out: int
    polynomial: bool

    def __init__(
        self,
        base: nn.Module,
        base_layers: int,
        base_dim: int,
        length: float,
        r_cut: float,
        cutoff: str = "cosine",
        n_out: int = 1,
    ) -> None:
        check_length(length)
        if not (math.isfinite(r_cut) and r_cut > 0):
            raise ValueError(
                f"smoothing cutoff radius (Å) must be a finite number > 0, got {r_cut}"
            )
        if cutoff not in CUTOFFS:
            raise ValueError(f"smoothing cutoff form must be one of {CUTOFFS}, got {cutoff!r}")
        super().__init__("smoothed", int(base_layers) + 2, int(base_dim) + int(n_out))
        self.base = base
        self.base_dim = int(base_dim)
        self.base_layers = int(base_layers)
        self.n_out = int(n_out)
        self.polynomial = cutoff == "polynomial"
        dtype = next(iter(base.parameters())).dtype
        self.register_buffer("length", torch.tensor(float(length), dtype=dtype))
        self.register_buffer("r_cut", torch.tensor(float(r_cut), dtype=dtype))

    def _predictions(self, hb: Tensor) -> Tensor:
        """``[N, n_out]``: the base's prediction(s) from its final node state."""
        return self.base.readout(hb).unsqueeze(1)

    def _base_forward(
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_weight: OptTensor
    ) -> Tensor:
        """``[N, n_out]``: the base's prediction(s) from its own ``forward``."""
        return self.base(species, edge_index, edge_vec, edge_weight).unsqueeze(1)

    def _smooth(self, p: Tensor, r: Tensor, edge_index: Tensor, edge_weight: OptTensor) -> Tensor:
        """``[N, n_out]`` predictions ``p`` averaged over the edges of lengths ``r``."""
        w = smoothing_weight(r, self.length, self.r_cut, self.polynomial)
        if edge_weight is not None:
            w = w * edge_weight.to(w.dtype)
        p = p.to(w.dtype)
        num = p.index_add(0, edge_index[1], w.unsqueeze(1) * p.index_select(0, edge_index[0]))
        den = torch.ones(p.shape[0], dtype=w.dtype, device=w.device).index_add_(0, edge_index[1], w)
        return num / den.unsqueeze(1)

    def _smoothed_forward(
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_weight: OptTensor
    ) -> Tensor:
        """``[N, n_out]``: the smoothed prediction(s), with the base's own ``forward`` (the same
        numbers as the layer-by-layer path, without carrying the edge lengths through it)."""
        p = self._base_forward(species, edge_index, edge_vec, edge_weight)
        r = torch.linalg.vector_norm(edge_vec.to(self.length.dtype), dim=1)
        return self._smooth(p, r, edge_index, edge_weight)

    def forward(
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_weight: OptTensor = None
    ) -> Tensor:
        return self._smoothed_forward(species, edge_index, edge_vec, edge_weight).mean(1)

    @torch.jit.export
    def embed(self, species: Tensor, edge_index: Tensor, edge_vec: Tensor) -> tuple[Tensor, Tensor]:
        hb, eb = self.base.embed(species, edge_index, edge_vec)
        dtype = self.length.dtype
        r = torch.linalg.vector_norm(edge_vec.to(dtype), dim=1, keepdim=True)
        p = torch.zeros(hb.shape[0], self.n_out, dtype=hb.dtype, device=hb.device)
        return torch.cat([hb, p], 1), torch.cat([r.to(eb.dtype), eb], 1)

    @torch.jit.export
    def interact(
        self, layer: int, h: Tensor, e: Tensor, edge_index: Tensor, edge_weight: OptTensor = None
    ) -> tuple[Tensor, Tensor]:
        bd = self.base_dim
        if layer < self.base_layers:
            hb, eb = self.base.interact(layer, h[:, :bd], e[:, 1:], edge_index, edge_weight)
            return torch.cat([hb, h[:, bd:]], 1), torch.cat([e[:, :1], eb], 1)
        if layer == self.base_layers:  # the predictions, for the ghost exchange that follows
            p = self._predictions(h[:, :bd]).to(h.dtype)
            return torch.cat([h[:, :bd], p], 1), e
        s = self._smooth(h[:, bd:], e[:, 0], edge_index, edge_weight)
        return torch.cat([h[:, :bd], s.to(h.dtype)], 1), e

    @torch.jit.export
    def readout(self, h: Tensor) -> Tensor:
        return h[:, self.base_dim :].mean(1)


class SmoothedEnsemble(Smoothed):
    """:class:`Smoothed` over an ensemble: every member smoothed, and the ensemble methods of
    the contract over the smoothed members."""

    ensemble_size: int

    def __init__(
        self, *args: Any, ensemble_size: int, std_scale: float = 1.0, **kwargs: Any
    ) -> None:
        """:class:`Smoothed`'s arguments but ``n_out``, the base ensemble's ``ensemble_size``
        and its ``std_scale``."""
        if ensemble_size < 2:
            raise ValueError(f"an ensemble has at least 2 members, got {ensemble_size}")
        if not (math.isfinite(std_scale) and std_scale > 0):
            raise ValueError(f"std_scale must be a finite number > 0, got {std_scale}")
        super().__init__(*args, n_out=ensemble_size, **kwargs)
        self.ensemble_size = int(ensemble_size)
        self.register_buffer("std_scale", torch.tensor(float(std_scale), dtype=self.length.dtype))

    def _predictions(self, hb: Tensor) -> Tensor:
        return self.base.readout_members(hb).t()

    def _base_forward(
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_weight: OptTensor
    ) -> Tensor:
        return self.base.forward_members(species, edge_index, edge_vec, edge_weight).t()

    @torch.jit.export
    def readout_members(self, h: Tensor) -> Tensor:
        return h[:, self.base_dim :].t()

    @torch.jit.export
    def readout_std(self, h: Tensor) -> Tensor:
        y = self.readout_members(h)
        return torch.stack([y.mean(0), y.std(0) * self.std_scale], 0)

    @torch.jit.export
    def forward_members(
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_weight: OptTensor = None
    ) -> Tensor:
        return self._smoothed_forward(species, edge_index, edge_vec, edge_weight).t()

    @torch.jit.export
    def forward_std(
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_weight: OptTensor = None
    ) -> Tensor:
        y = self.forward_members(species, edge_index, edge_vec, edge_weight)
        return torch.stack([y.mean(0), y.std(0) * self.std_scale], 0)
