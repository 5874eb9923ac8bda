"""A SchNet-style continuous-filter network (kind ``schnet``; Schütt et al. 2017/2018).

Atoms start from a species embedding (width C = ``node_dim``). Each edge carries a
species-resolved Gaussian basis of its length: ``n_rbf`` Gaussians on [0, r_max] placed in
the block of the sender's species (``[S * n_rbf]``, zero elsewhere), so a filter can tell a
Cu neighbour from a Zr one at the same distance. Every interaction block is a
continuous-filter convolution,

    x = W_in h;   W_ij = MLP(basis_ij) * f_c(r_ij);   m_i = sum_j x_j * W_ij;
    h <- h + W_2 ssp(W_1 m),

with the cosine cutoff f_c(r) = (cos(pi r / r_max) + 1) / 2, so messages vanish smoothly at
r_max, and ssp(x) = softplus(x) - log 2. The readout is an atom-wise MLP de-standardized to
eV. Only distances enter: the output is exactly invariant under rotations and reflections.

Export contract (docs/contracts.md): ``embed`` gives h [N, C] and the edge state
``e = [basis (S * n_rbf) | f_c (1)]``, ``interact(layer)`` applies one block (e unchanged),
``readout`` the MLP; ``feature_dim = C``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .base import BarrierModel, OptTensor, add_label_scale
from .config import ModelConfig

__all__ = ["SchNet", "CFConv", "shifted_softplus", "species_basis"]


def shifted_softplus(x: Tensor) -> Tensor:
    """softplus(x) - log 2 (zero at zero)."""
    return torch.nn.functional.softplus(x) - 0.6931471805599453  # log 2


def species_basis(
    species: Tensor,
    edge_index: Tensor,
    edge_vec: Tensor,
    centers: Tensor,
    gamma: float,
    n_species: int,
    r_max: float,
) -> Tensor:
    """``[E, n_species * n_rbf + 1]``: Gaussians of each edge's length at ``centers`` in the
    block of the sender's species (zero elsewhere), then the cosine cutoff at ``r_max``."""
    r = torch.linalg.vector_norm(edge_vec, dim=-1)
    gauss = torch.exp(-gamma * (r.unsqueeze(1) - centers) ** 2)
    # the sender's species picks the block of the basis that holds the Gaussians
    block = torch.nn.functional.one_hot(species.index_select(0, edge_index[0]), n_species)
    basis = (block.to(gauss.dtype).unsqueeze(2) * gauss.unsqueeze(1)).reshape(
        -1, n_species * centers.shape[0]
    )
    x = (r / r_max).clamp(max=1.0)
    cut = 0.5 * (torch.cos(math.pi * x) + 1.0)
    return torch.cat([basis, cut.unsqueeze(1)], dim=1)


class ShiftedSoftplus(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return shifted_softplus(x)


class CFConv(nn.Module):
    """One interaction block: continuous-filter convolution and an atom-wise update (the edge
    state comes back unchanged)."""

    def __init__(self, channels: int, basis_dim: int) -> None:
        super().__init__()
        self.channels = channels
        self.lin_in = nn.Linear(channels, channels, bias=False)
        self.filter = nn.Sequential(
            nn.Linear(basis_dim, channels), ShiftedSoftplus(), nn.Linear(channels, channels)
        )
        self.lin_out1 = nn.Linear(channels, channels)
        self.lin_out2 = nn.Linear(channels, channels)

    def forward(
        self, h: Tensor, e: Tensor, edge_index: Tensor, edge_weight: OptTensor = None
    ) -> tuple[Tensor, Tensor]:
        basis = e[:, :-1]
        cut = e[:, -1]
        if edge_weight is not None:
            cut = cut * edge_weight
        x = self.lin_in(h)
        src = edge_index[0]
        dst = edge_index[1]
        if torch.is_grad_enabled():  # training: one pass (autograd keeps every filter anyway)
            w = self.filter(basis) * cut.unsqueeze(1)
            msg = x.index_select(0, src) * w
            m = torch.zeros_like(x).index_add_(0, dst, msg)
            return h + self.lin_out2(shifted_softplus(self.lin_out1(m))), e
        m = torch.zeros_like(x)
        step = 8192  # inference: edges in chunks, the [chunk, C] filters stay in cache
        for start in range(0, src.shape[0], step):
            w = self.filter(basis[start : start + step]) * cut[start : start + step].unsqueeze(1)
            msg = x.index_select(0, src[start : start + step]) * w
            m.index_add_(0, dst[start : start + step], msg)
        return h + self.lin_out2(shifted_softplus(self.lin_out1(m))), e


class SchNet(BarrierModel):
    """Species embedding, ``n_layers`` continuous-filter blocks, atom-wise MLP readout
    (``interact``, ``readout`` and ``forward`` are :class:`BarrierModel`'s)."""

    __constants__ = ["n_species", "n_rbf", "r_max"]

    def __init__(self, cfg: ModelConfig) -> None:
        if cfg.kind != "schnet":
            raise ValueError(f"SchNet builds kind 'schnet', got {cfg.kind!r}")
        c = cfg.node_dim
        super().__init__(cfg.kind, cfg.n_layers, c)
        self.n_species = len(cfg.type_names)
        self.n_rbf = cfg.n_rbf
        self.r_max = float(cfg.r_max)
        self.register_buffer("centers", torch.linspace(0.0, cfg.r_max, cfg.n_rbf))
        spacing = cfg.r_max / max(cfg.n_rbf - 1, 1)
        self.gamma = float(0.5 / spacing**2)  # Gaussian width = the centre spacing
        self.embedding = nn.Embedding(self.n_species, c)
        basis_dim = self.n_species * cfg.n_rbf
        self.layers = nn.ModuleList([CFConv(c, basis_dim) for _ in range(cfg.n_layers)])
        self.decoder = nn.Sequential(
            nn.Linear(c, cfg.decoder_dim), ShiftedSoftplus(), nn.Linear(cfg.decoder_dim, 1)
        )
        add_label_scale(self)

    @torch.jit.export
    def embed(self, species: Tensor, edge_index: Tensor, edge_vec: Tensor) -> tuple[Tensor, Tensor]:
        h = self.embedding(species)
        e = species_basis(
            species, edge_index, edge_vec, self.centers, self.gamma, self.n_species, self.r_max
        )
        return h, e
