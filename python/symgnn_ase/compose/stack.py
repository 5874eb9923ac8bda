"""Models side by side (:class:`Stack`), the layout an ensemble's and a residual model's file
share (``docs/contracts.md``).

The node state is the members' node states side by side (``feature_dim = sum F_k``), the edge
state the members' edge states side by side, and ``interact(layer)`` runs layer ``layer`` of
every member on its own slice (a member with fewer layers passes its slice through once it is
done). A member's numbers are therefore exactly those it gives alone, on one rank or many (the
LAMMPS compute's layer-by-layer ghost exchange carries every member's features).
"""

import torch
from torch import Tensor, nn

from ..nn.base import BarrierModel, OptTensor
from .load import probe_graph

__all__ = ["InFloat64", "Stack", "edge_width"]


class InFloat64(nn.Module):
    """A float32 member (a network) inside a float64 stack (beside a float64 ridge): its
    contract methods with float64 states and edge vectors outside, float32 inside. Edge vectors
    are cast to float32 as the member's own file would receive them (formed in float64, then
    cast), and float32 states pass through float64 exactly, so the member gives bit for bit
    what it gives alone."""

    def __init__(self, member: nn.Module) -> None:
        super().__init__()
        self.member = member

    @torch.jit.export
    def embed(self, species: Tensor, edge_index: Tensor, edge_vec: Tensor) -> tuple[Tensor, Tensor]:
        h, e = self.member.embed(species, edge_index, edge_vec.float())
        return h.double(), e.double()

    @torch.jit.export
    def interact(
        self, layer: int, h: Tensor, e: Tensor, edge_index: Tensor, edge_weight: OptTensor = None
    ) -> tuple[Tensor, Tensor]:
        weight = edge_weight
        if weight is not None:
            weight = weight.float()
        h, e = self.member.interact(layer, h.float(), e.float(), edge_index, weight)
        return h.double(), e.double()

    @torch.jit.export
    def readout(self, h: Tensor) -> Tensor:
        return self.member.readout(h.float()).double()

    def forward(
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_weight: OptTensor = None
    ) -> Tensor:
        weight = edge_weight
        if weight is not None:
            weight = weight.float()
        return self.member(species, edge_index, edge_vec.float(), weight).double()


def edge_width(member: nn.Module, dtype: torch.dtype, device: torch.device | str = "cpu") -> int:
    """The width of ``member``'s edge state ``e`` (``embed``'s second output), measured on a
    two-atom graph (with zero node inputs for a member that takes them)."""
    with torch.no_grad():
        h, e = member.embed(*probe_graph(member, dtype, device))
    if h.dim() != 2 or e.dim() != 2 or e.shape[0] != 2:
        raise ValueError(
            f"an ensemble member's embed must return h [N, F] and e [E, Fe], got "
            f"{tuple(h.shape)} and {tuple(e.shape)}"
        )
    return int(e.shape[1])


class Stack(BarrierModel):
    """Several models (eager or TorchScript modules with ``embed``/``interact``/``readout``)
    side by side: the node state is the members' node states side by side, the edge state
    theirs, and ``interact(layer)`` runs layer ``layer`` of every member on its own slice.
    ``readout_members(h)`` is every member's readout [K, N]; the subclasses combine them
    (:class:`~.ensemble.Ensemble`: mean, :class:`~.residual.Residual`: sum).

    ``n_layers``, ``feature_dims`` and ``edge_dims`` are the members' layer counts, node-state
    widths and edge-state widths, in member order.
    """

    # class-level annotations (TorchScript types the attributes from them; no
    # `from __future__ import annotations` in this file, so they are types, not strings)
    member_layers: list[int]
    feature_dims: list[int]
    edge_dims: list[int]

    def __init__(
        self,
        members: list[nn.Module],
        n_layers: list[int],
        feature_dims: list[int],
        edge_dims: list[int],
    ) -> None:
        kind = type(self).__name__.lower()  # the contract's `kind`: "ensemble", "residual"
        k = len(members)
        if k < 2:
            raise ValueError(f"{kind}: needs at least 2 models, got {k}")
        if not (len(n_layers) == len(feature_dims) == len(edge_dims) == k):
            raise ValueError("one layer count, feature width and edge width per member")
        super().__init__(kind, max(int(n) for n in n_layers), sum(int(f) for f in feature_dims))
        self.members = nn.ModuleList(members)
        self.member_layers = [int(n) for n in n_layers]
        self.feature_dims = [int(f) for f in feature_dims]
        self.edge_dims = [int(f) for f in edge_dims]

    @torch.jit.export
    def embed(self, species: Tensor, edge_index: Tensor, edge_vec: Tensor) -> tuple[Tensor, Tensor]:
        hs: list[Tensor] = []
        es: list[Tensor] = []
        for member in self.members:
            h, e = member.embed(species, edge_index, edge_vec)
            hs.append(h)
            es.append(e)
        return torch.cat(hs, 1), torch.cat(es, 1)

    @torch.jit.export
    def interact(
        self, layer: int, h: Tensor, e: Tensor, edge_index: Tensor, edge_weight: OptTensor = None
    ) -> tuple[Tensor, Tensor]:
        hs: list[Tensor] = []
        es: list[Tensor] = []
        h0 = 0
        e0 = 0
        for k, member in enumerate(self.members):
            hk = h[:, h0 : h0 + self.feature_dims[k]]
            ek = e[:, e0 : e0 + self.edge_dims[k]]
            if layer < self.member_layers[k]:
                hk, ek = member.interact(layer, hk, ek, edge_index, edge_weight)
            hs.append(hk)
            es.append(ek)
            h0 += self.feature_dims[k]
            e0 += self.edge_dims[k]
        return torch.cat(hs, 1), torch.cat(es, 1)

    @torch.jit.export
    def readout_members(self, h: Tensor) -> Tensor:
        outs: list[Tensor] = []
        h0 = 0
        for k, member in enumerate(self.members):
            outs.append(member.readout(h[:, h0 : h0 + self.feature_dims[k]]))
            h0 += self.feature_dims[k]
        return torch.stack(outs, 0)

    @torch.jit.export
    def forward_members(
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_weight: OptTensor = None
    ) -> Tensor:
        # member by member (the same numbers as embed/interact/readout, without holding
        # every member's edge state at once)
        outs: list[Tensor] = []
        for member in self.members:
            outs.append(member(species, edge_index, edge_vec, edge_weight))
        return torch.stack(outs, 0)
