"""Thermal denoising in front of a barrier model (issue 12: barriers during MD).

The barrier is a property of the inherent structure; an MD snapshot is that structure plus
thermal displacements. A minimization removes them exactly but costs hundreds of force
calls. One step of steepest descent, ``x + alpha * F(x)`` with the glass's own potential,
already removes the stiff part of them, and leaves a relaxed glass (small forces) almost
where it is. :class:`ForceNet` learns ``F`` from positions (a small continuous-filter network
whose per-edge scalars multiply the edge directions, so the output rotates with the
structure); :class:`Denoised` moves the atoms by ``n_steps`` steps of ``alpha * F`` (each at
most ``max_step`` Å per atom) inside the model and hands the moved edges to any barrier
model, ensembles included.

Export contract (``docs/contracts.md``): the node state is ``[species (1) | force-net state
(C) | displacement u (3) | barrier model state (F_b)]`` and the edge state starts as the input
edge vectors. Each of the ``n_steps`` steps is ``n_blocks + 1`` layers: the force-net blocks on
the edges moved by ``u_j - u_i``, then ``u += alpha * F`` for the receivers (ghost atoms get
theirs from their owners in the exchange that follows). One more layer runs the barrier
model's ``embed`` on the moved edges, and the barrier model's layers follow. The LAMMPS compute
and the ASE calculator therefore run it unchanged, on any number of ranks. Rotating or
reflecting the input rotates ``F`` and ``u`` with it: a barrier model that is exactly
invariant stays so. The pairs are those of the input's neighbor list.
"""

import math
from typing import Any

import torch
from torch import Tensor, nn

from .base import BarrierModel, OptTensor
from .schnet import CFConv, ShiftedSoftplus, species_basis

__all__ = ["ForceNet", "Denoised", "DenoisedEnsemble"]


class ForceNet(nn.Module):
    """Per-atom forces (eV/Å) of a potential, learned from positions.

    Species embedding (width ``channels``), ``n_blocks`` continuous-filter blocks on a
    species-resolved Gaussian basis with a cosine cutoff at ``r_max``, then a pair head:
    ``F_i = sum_j s(h_i, h_j, basis_ij) f_c(r_ij) (r_j - r_i) / r_ij``.
    """

    __constants__ = ["n_species", "n_rbf", "r_max", "channels", "n_blocks"]

    def __init__(
        self, n_species: int, r_max: float, channels: int = 48, n_rbf: int = 24, n_blocks: int = 2
    ) -> None:
        super().__init__()
        if n_species < 1 or channels < 1 or n_rbf < 2 or n_blocks < 1:
            raise ValueError(
                f"ForceNet needs n_species, channels, n_blocks >= 1 and n_rbf >= 2, got "
                f"{n_species}, {channels}, {n_blocks}, {n_rbf}"
            )
        if not (r_max > 0 and math.isfinite(r_max)):
            raise ValueError(f"ForceNet r_max must be a finite number > 0, got {r_max}")
        self.n_species = int(n_species)
        self.n_rbf = int(n_rbf)
        self.r_max = float(r_max)
        self.channels = int(channels)
        self.n_blocks = int(n_blocks)
        self.register_buffer("centers", torch.linspace(0.0, r_max, n_rbf))
        spacing = r_max / (n_rbf - 1)
        self.gamma = float(0.5 / spacing**2)
        self.embedding = nn.Embedding(n_species, channels)
        basis_dim = n_species * n_rbf
        self.blocks = nn.ModuleList([CFConv(channels, basis_dim) for _ in range(n_blocks)])
        self.head = nn.Sequential(
            nn.Linear(2 * channels + basis_dim, channels),
            ShiftedSoftplus(),
            nn.Linear(channels, 1),
        )

    def edge_state(self, species: Tensor, edge_index: Tensor, edge_vec: Tensor) -> Tensor:
        """``[E, S * n_rbf + 1]``: the sender-species Gaussian basis and the cutoff (SchNet's)."""
        return species_basis(
            species, edge_index, edge_vec, self.centers, self.gamma, self.n_species, self.r_max
        )

    def block(self, k: int, h: Tensor, e: Tensor, edge_index: Tensor) -> Tensor:
        for i, mod in enumerate(self.blocks):
            if i == k:
                return mod(h, e, edge_index)[0]
        raise IndexError("force-net block out of range")

    def head_forces(self, h: Tensor, e: Tensor, edge_index: Tensor, edge_vec: Tensor) -> Tensor:
        """``[N, 3]`` forces on the receivers (zero on atoms without incoming edges)."""
        src = edge_index[0]
        dst = edge_index[1]
        basis = e[:, :-1]
        cut = e[:, -1]
        s = self.head(torch.cat([h.index_select(0, dst), h.index_select(0, src), basis], 1))
        r = torch.linalg.vector_norm(edge_vec, dim=-1, keepdim=True).clamp(min=1e-6)
        pair = s * cut.unsqueeze(1) * edge_vec / r
        return torch.zeros(h.shape[0], 3, dtype=h.dtype, device=h.device).index_add_(0, dst, pair)

    def forward(self, species: Tensor, edge_index: Tensor, edge_vec: Tensor) -> Tensor:
        e = self.edge_state(species, edge_index, edge_vec)
        h = self.embedding(species)
        for k in range(self.n_blocks):
            h = self.block(k, h, e, edge_index)
        return self.head_forces(h, e, edge_index, edge_vec)


class Denoised(BarrierModel):
    """A barrier model that predicts on positions moved by ``n_steps`` steps of
    ``alpha * ForceNet(x)`` (see the module doc).

    ``base`` is any module with the contract's ``embed``/``interact``/``readout`` (an exported
    model or an ensemble); ``base_layers`` and ``base_dim`` are its ``n_layers`` and
    ``feature_dim``.
    """

    fn_blocks: int
    fn_channels: int
    base_dim: int
    base_layers: int
    n_steps: int

    def __init__(
        self,
        force_net: ForceNet,
        base: nn.Module,
        base_layers: int,
        base_dim: int,
        alpha: float,
        max_step: float = 0.3,
        n_steps: int = 1,
    ) -> None:
        if not (alpha >= 0 and math.isfinite(alpha)):
            raise ValueError(f"alpha (Å²/eV) must be a finite number >= 0, got {alpha}")
        if not (max_step > 0 and math.isfinite(max_step)):
            raise ValueError(f"max_step (Å) must be a finite number > 0, got {max_step}")
        if n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {n_steps}")
        c = force_net.channels
        layers = int(n_steps) * (force_net.n_blocks + 1) + 1 + int(base_layers)
        super().__init__("denoised", layers, 1 + c + 3 + int(base_dim))
        self.force_net = force_net
        self.base = base
        self.fn_blocks = force_net.n_blocks
        self.fn_channels = c
        self.base_dim = int(base_dim)
        self.base_layers = int(base_layers)
        self.n_steps = int(n_steps)
        dtype = next(iter(force_net.parameters())).dtype
        self.register_buffer("alpha", torch.tensor(float(alpha), dtype=dtype))
        self.register_buffer("max_step", torch.tensor(float(max_step), dtype=dtype))

    def _step(self, forces: Tensor) -> Tensor:
        """``alpha * F``, its length capped at ``max_step`` per atom."""
        u = self.alpha * forces
        norm = torch.linalg.vector_norm(u, dim=1, keepdim=True)
        return u * torch.clamp(self.max_step / norm.clamp(min=1e-12), max=1.0)

    def _moved(self, h: Tensor, e: Tensor, edge_index: Tensor) -> Tensor:
        """The edge vectors with both ends moved by the displacement so far."""
        c = self.fn_channels
        u = h[:, 1 + c : 4 + c]
        return e[:, :3] + u.index_select(0, edge_index[0]) - u.index_select(0, edge_index[1])

    @torch.jit.export
    def embed(self, species: Tensor, edge_index: Tensor, edge_vec: Tensor) -> tuple[Tensor, Tensor]:
        dtype = self.alpha.dtype
        n = species.shape[0]
        rest = torch.zeros(
            n, self.fn_channels + 3 + self.base_dim, dtype=dtype, device=species.device
        )
        h = torch.cat([species.to(dtype).unsqueeze(1), rest], 1)
        return h, edge_vec.to(dtype)

    @torch.jit.export
    def interact(
        self, layer: int, h: Tensor, e: Tensor, edge_index: Tensor, edge_weight: OptTensor = None
    ) -> tuple[Tensor, Tensor]:
        c = self.fn_channels
        head = 1 + c + 3  # species, force-net state, displacement
        per_step = self.fn_blocks + 1
        denoise_layers = self.n_steps * per_step
        if layer < denoise_layers:
            r = layer % per_step
            if r == 0:  # a new step: the force net starts again on the moved edges
                species = torch.round(h[:, 0]).to(torch.int64)
                vec = self._moved(h, e, edge_index)
                e = torch.cat([e[:, :3], self.force_net.edge_state(species, edge_index, vec)], 1)
                h_fn = self.force_net.embedding(species).to(h.dtype)
            else:
                h_fn = h[:, 1 : 1 + c]
            if r < self.fn_blocks:
                h_fn = self.force_net.block(r, h_fn, e[:, 3:], edge_index)
                return torch.cat([h[:, :1], h_fn, h[:, 1 + c :]], 1), e
            vec = self._moved(h, e, edge_index)
            u = h[:, 1 + c : head] + self._step(
                self.force_net.head_forces(h_fn, e[:, 3:], edge_index, vec)
            )
            return torch.cat([h[:, : 1 + c], u, h[:, head:]], 1), e
        if layer == denoise_layers:
            species = torch.round(h[:, 0]).to(torch.int64)
            hb, eb = self.base.embed(species, edge_index, self._moved(h, e, edge_index))
            return torch.cat([h[:, :head], hb.to(h.dtype)], 1), eb
        hb, eb = self.base.interact(
            layer - denoise_layers - 1, h[:, head:], e, edge_index, edge_weight
        )
        return torch.cat([h[:, :head], hb], 1), eb

    @torch.jit.export
    def readout(self, h: Tensor) -> Tensor:
        return self.base.readout(h[:, 1 + self.fn_channels + 3 :])

    @torch.jit.export
    def displacements(self, species: Tensor, edge_index: Tensor, edge_vec: Tensor) -> Tensor:
        """``[N, 3]`` the displacement the model applies to each receiver before the barrier
        model (Å); complete when every atom receives its edges (one process)."""
        h, e = self.embed(species, edge_index, edge_vec)
        for layer in range(self.n_steps * (self.fn_blocks + 1)):
            h, e = self.interact(layer, h, e, edge_index, None)
        return h[:, 1 + self.fn_channels : 4 + self.fn_channels]


class DenoisedEnsemble(Denoised):
    """:class:`Denoised` over an ensemble: adds the ensemble methods of the contract."""

    ensemble_size: int

    def __init__(self, *args: Any, ensemble_size: int, **kwargs: Any) -> None:
        """:class:`Denoised`'s arguments, and the base ensemble's ``ensemble_size``."""
        super().__init__(*args, **kwargs)
        if ensemble_size < 2:
            raise ValueError(f"an ensemble has at least 2 members, got {ensemble_size}")
        self.ensemble_size = int(ensemble_size)

    def _final_state(
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_weight: OptTensor
    ) -> Tensor:
        h, e = self.embed(species, edge_index, edge_vec)
        for layer in range(self.n_layers):
            h, e = self.interact(layer, h, e, edge_index, edge_weight)
        return h

    @torch.jit.export
    def readout_members(self, h: Tensor) -> Tensor:
        return self.base.readout_members(h[:, 1 + self.fn_channels + 3 :])

    @torch.jit.export
    def readout_std(self, h: Tensor) -> Tensor:
        return self.base.readout_std(h[:, 1 + self.fn_channels + 3 :])

    @torch.jit.export
    def forward_members(
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_weight: OptTensor = None
    ) -> Tensor:
        return self.readout_members(self._final_state(species, edge_index, edge_vec, edge_weight))

    @torch.jit.export
    def forward_std(
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_weight: OptTensor = None
    ) -> Tensor:
        return self.readout_std(self._final_state(species, edge_index, edge_vec, edge_weight))
