"""A model with its per-atom predictions averaged over neighbouring atoms, in one file
(``symgnn smooth MODEL --length L -o s.pt``).

The barrier is a smooth field in space: neighbouring atoms have correlated barriers, and a
model's error is partly noise from atom to atom. Averaging each atom's prediction with its
neighbours', weighted by distance,

    s_i = (p_i + sum_j w(r_ij) p_j) / (1 + sum_j w(r_ij)),
    w(r) = exp(-r / L) f_c(r),

with ``f_c`` a cutoff that goes smoothly to 0 at ``r_cut`` (the model's ``r_max``), raises the
validation Pearson of every model tried (``docs/model_selection.md``). :class:`Smoothed` does
it inside the model file, behind any barrier model, so the calculator and the LAMMPS compute
run it unchanged.

Export contract (``docs/contracts.md``): the node state is ``[base state (F_b) | predictions
(K)]`` (K = 1 for one model, the members for an ensemble) and the edge state ``[r_ij (1) |
base edge state]``, ``r_ij`` the lengths of the input ``edge_vec``. The base's layers run on
their slices; one more layer writes each atom's prediction(s) into the node state (ghost atoms
get theirs from their owners in the exchange that follows), and a last one replaces them by
the smoothed values, for the receivers. The K smoothed values are the module's members
(``readout_members``); ``readout`` is their mean and, for an ensemble, ``readout_std`` their
mean and sample standard deviation times the base's ``std_scale`` (:class:`~.spread.
MeanAndSpread`). ``forward``, ``forward_members`` and ``forward_std`` (the calculator's calls)
give the same numbers the short way: the base's own ``forward`` (or ``forward_members``), then
the average with the lengths of ``edge_vec``, without carrying them through the base's layers.
The weights depend on distances only: an exactly invariant base stays exactly invariant. The
pairs are those of the input's neighbor list.
"""

import logging
import math
import os
from pathlib import Path
from typing import Any, Final

import torch
from torch import Tensor, nn

from ..export import load_model, wrapped_kinds
from ..nn.base import BarrierModel, OptTensor
from ..outputs import check_output
from .load import layer_widths, refuse_node_inputs
from .record import export_wrapper
from .spread import MeanAndSpread, check_std_scale

logger = logging.getLogger(__name__)

__all__ = ["CUTOFFS", "Smoothed", "build_smoothed", "export_smoothed", "smoothing_weight"]

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


class Smoothed(MeanAndSpread, BarrierModel):
    """A barrier model whose per-atom predictions are averaged over their neighbours (see the
    module doc).

    ``base`` is any module with the contract's ``embed``/``interact``/``readout`` (an exported
    model, an ensemble, ...); ``base_layers`` and ``base_dim`` are its ``n_layers`` and
    ``feature_dim``; ``r_cut`` the cutoff of the weight (the model's ``r_max``).
    ``ensemble_size`` > 1: the base is an ensemble of that many members, each smoothed (its
    ``readout_members``/``forward_members``), with the base's ``std_scale``.
    """

    base_dim: int
    base_layers: int
    n_out: int
    polynomial: bool
    ensemble_size: int
    #: the base is an ensemble: its members are smoothed (TorchScript compiles one branch)
    of_members: Final[bool]

    def __init__(
        self,
        base: nn.Module,
        base_layers: int,
        base_dim: int,
        length: float,
        r_cut: float,
        cutoff: str = "cosine",
        ensemble_size: int = 1,
        std_scale: float = 1.0,
    ) -> None:
        check_length(length)
        if not (math.isfinite(r_cut) and r_cut > 0):
            raise ValueError(
                f"smoothing cutoff radius (Å) must be a finite number > 0, got {r_cut}"
            )
        if cutoff not in CUTOFFS:
            raise ValueError(f"smoothing cutoff form must be one of {CUTOFFS}, got {cutoff!r}")
        if ensemble_size < 1:
            raise ValueError(f"ensemble_size must be >= 1 (1: one model), got {ensemble_size}")
        check_std_scale(std_scale)
        n_out = int(ensemble_size)
        super().__init__("smoothed", int(base_layers) + 2, int(base_dim) + n_out)
        self.base = base
        self.base_dim = int(base_dim)
        self.base_layers = int(base_layers)
        self.n_out = n_out
        self.ensemble_size = n_out
        self.of_members = n_out > 1
        self.polynomial = cutoff == "polynomial"
        dtype = next(iter(base.parameters())).dtype
        self.register_buffer("length", torch.tensor(float(length), dtype=dtype))
        self.register_buffer("r_cut", torch.tensor(float(r_cut), dtype=dtype))
        self.register_buffer("std_scale", torch.tensor(float(std_scale), dtype=dtype))

    def _predictions(self, hb: Tensor) -> Tensor:
        """``[N, K]``: the base's prediction(s) from its final node state."""
        if self.of_members:
            return self.base.readout_members(hb).t()
        return self.base.readout(hb).unsqueeze(1)

    def _base_forward(
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_weight: OptTensor
    ) -> Tensor:
        """``[N, K]``: the base's prediction(s) from its own ``forward``."""
        if self.of_members:
            return self.base.forward_members(species, edge_index, edge_vec, edge_weight).t()
        return self.base(species, edge_index, edge_vec, edge_weight).unsqueeze(1)

    def _smooth(self, p: Tensor, r: Tensor, edge_index: Tensor, edge_weight: OptTensor) -> Tensor:
        """``[N, K]`` predictions ``p`` averaged over the edges of lengths ``r``."""
        w = smoothing_weight(r, self.length, self.r_cut, self.polynomial)
        if edge_weight is not None:
            w = w * edge_weight.to(w.dtype)
        p = p.to(w.dtype)
        num = p.index_add(0, edge_index[1], w.unsqueeze(1) * p.index_select(0, edge_index[0]))
        den = torch.ones(p.shape[0], dtype=w.dtype, device=w.device).index_add_(0, edge_index[1], w)
        return num / den.unsqueeze(1)

    @torch.jit.export
    def forward_members(
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_weight: OptTensor = None
    ) -> Tensor:
        """``[K, N]``: the smoothed prediction(s), with the base's own ``forward`` (the same
        numbers as the layer-by-layer path, without carrying the edge lengths through it)."""
        p = self._base_forward(species, edge_index, edge_vec, edge_weight)
        r = torch.linalg.vector_norm(edge_vec.to(self.length.dtype), dim=1)
        return self._smooth(p, r, edge_index, edge_weight).t()

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
    def readout_members(self, h: Tensor) -> Tensor:
        return h[:, self.base_dim :].t()


def build_smoothed(
    base: str | os.PathLike, length: float, cutoff: str = "cosine"
) -> tuple[Smoothed, Any]:
    """(the eager smoothed model, the loaded base). ``length`` is L in Å; the weight's cutoff
    radius is the base's ``r_max``."""
    check_length(length)
    loaded = load_model(base)
    names = loaded.node_inputs and list(loaded.node_inputs.names)
    refuse_node_inputs(str(loaded.path), names, what="wrapped (smoothed)")
    if "smoothed" in wrapped_kinds(loaded.info):
        logger.warning(
            "%s is already smoothed (kinds %s): its predictions will be averaged twice",
            loaded.path,
            " > ".join(wrapped_kinds(loaded.info)),
        )
    layer_widths(loaded.module, loaded.n_layers, loaded.dtype, f"model {loaded.path}")
    std_scale = 1.0
    if loaded.ensemble_size > 1:  # every ensemble module holds its std_scale buffer
        if not hasattr(loaded.module, "std_scale"):
            raise ValueError(
                f"{loaded.path}: an ensemble file ({loaded.ensemble_size} members) without the "
                "buffer std_scale: not a symgnn ensemble file"
            )
        std_scale = float(loaded.module.std_scale)
    model = Smoothed(
        loaded.module,
        loaded.n_layers,
        loaded.feature_dim,
        float(length),
        loaded.r_max,
        cutoff,
        ensemble_size=loaded.ensemble_size,
        std_scale=std_scale,
    )
    return model.eval(), loaded


def export_smoothed(
    base: str | os.PathLike,
    output: str | os.PathLike,
    length: float,
    cutoff: str = "cosine",
) -> Path:
    """Write ``base`` with its predictions smoothed over length ``length`` (Å) to ``output``."""
    check_length(length)
    check_output(output, [base], what="smoothed model output")
    model, loaded = build_smoothed(base, length, cutoff)
    info: dict[str, Any] = {
        "kind": "smoothed",
        "smooth": {
            "length": float(length),
            "cutoff": cutoff,
            "r_cut": float(loaded.r_max),
            "weight": "exp(-r/length) * cutoff(r), 0 from r_cut on; self weight 1",
        },
    }
    ensemble_info = None
    if loaded.ensemble_size > 1:  # the std of the smoothed members
        ensemble_info = {
            "std": "sample standard deviation over the smoothed members (K - 1), times std_scale",
            "std_scale": float(model.std_scale),
        }
    path = export_wrapper(model, output, base, loaded, info, ensemble_info)
    logger.info("exported %s smoothed over L = %g Å to %s", base, length, path)
    return path
