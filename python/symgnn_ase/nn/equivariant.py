"""An exactly O(3)-invariant model that keeps angular information (PaiNN family).

Each atom carries C scalar channels s and C vector channels v (global frame).
Messages combine the sender's scalars, a radial filter with a smooth cosine
cutoff at r_max, the sender's vectors and the bond direction; the update mixes
vector channels and feeds their norms and mutual dot products back into the
scalars. Only scalars reach the readout, so rotations and reflections of the
structure leave the prediction unchanged up to float round-off.

For the exported-model contract the node state is flattened as
``h = [s (C) | v (3*C, row-major [3, C])]``: ``feature_dim = 4*C`` values per
atom, which the LAMMPS compute exchanges between ranks unchanged (vectors are
in the global frame). The edge state ``e = [rbf * cutoff (n_rbf) | unit (3)]``
is computed once by ``embed`` and returned unchanged by ``interact``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .base import BarrierModel, OptTensor, add_label_scale
from .config import ModelConfig
from .ops import fused_ops_available
from .symgnn import inference_on_cpu, mlp_decoder

__all__ = ["EquivariantGNN", "PaiNNLayer"]


class BesselRBF(nn.Module):
    """sin(n pi r / r_max) / r with a cosine cutoff envelope (zero at r_max)."""

    def __init__(self, n_rbf: int, r_max: float) -> None:
        super().__init__()
        self.r_max = r_max
        self.register_buffer("freq", torch.arange(1, n_rbf + 1, dtype=torch.float32) * math.pi)

    def forward(self, r: Tensor) -> Tensor:
        x = (r / self.r_max).unsqueeze(-1)
        rbf = torch.sin(self.freq * x) / x.clamp_min(1e-6)
        envelope = 0.5 * (torch.cos(math.pi * x.clamp(max=1.0)) + 1.0)
        return rbf * envelope


class PaiNNLayer(nn.Module):
    """One message + update block on (s [N, C], v [N, 3, C]) and the edge state
    e = [rbf * cutoff (n_rbf) | unit (3)]."""

    __constants__ = ["fused", "n_rbf"]  # fused: symgnn::painn_message for inference (EGATLayer)

    def __init__(self, channels: int, n_rbf: int) -> None:
        super().__init__()
        self.fused = fused_ops_available()
        c = channels
        self.channels = c
        self.n_rbf = n_rbf
        self.phi = nn.Sequential(nn.Linear(c, c), nn.SiLU(), nn.Linear(c, 3 * c))
        self.filt = nn.Linear(n_rbf, 3 * c)
        self.mix_u = nn.Linear(c, c, bias=False)
        self.mix_v = nn.Linear(c, c, bias=False)
        self.update = nn.Sequential(nn.Linear(2 * c, c), nn.SiLU(), nn.Linear(c, 3 * c))
        self.norm = nn.LayerNorm(c)

    def forward(
        self, s: Tensor, v: Tensor, e: Tensor, edge_index: Tensor, edge_weight: OptTensor = None
    ) -> tuple[Tensor, Tensor]:
        c = self.channels
        ds, dv = self.message(s, v, e, edge_index, edge_weight)
        s = s + ds
        v = v + dv
        u = self.mix_u(v)
        w = self.mix_v(v)
        wnorm = torch.sqrt((w * w).sum(1) + 1e-8)
        a = self.update(torch.cat([s, wnorm], dim=1))
        a_vv, a_sv, a_ss = a.split(c, dim=1)
        v = v + a_vv.unsqueeze(1) * u
        s = self.norm(s + a_ss + a_sv * (u * w).sum(1))
        return s, v

    def message(
        self, s: Tensor, v: Tensor, e: Tensor, edge_index: Tensor, edge_weight: OptTensor
    ) -> tuple[Tensor, Tensor]:
        """Summed messages of each receiver: scalars [N, C] and vectors [N, 3, C]."""
        c = self.channels
        n = s.shape[0]
        rbf = e[:, : self.n_rbf]
        unit = e[:, self.n_rbf :]
        if self.fused:
            if inference_on_cpu(self.training, s):
                ds, dv = torch.ops.symgnn.painn_message(
                    self.phi(s),
                    v,
                    rbf,
                    unit,
                    self.filt.weight,
                    self.filt.bias,
                    edge_index,
                    edge_weight,
                )
                return ds, dv.view(n, 3, c)
        src = edge_index[0]
        dst = edge_index[1]
        x = self.phi(s).index_select(0, src) * self.filt(rbf)
        if edge_weight is not None:
            x = x * edge_weight.unsqueeze(1)
        xs, xvv, xvs = x.split(c, dim=1)
        ds = torch.zeros((n, c), dtype=s.dtype, device=s.device).index_add_(0, dst, xs)
        vmsg = v.index_select(0, src) * xvv.unsqueeze(1) + unit.unsqueeze(2) * xvs.unsqueeze(1)
        dv = torch.zeros((n, 3 * c), dtype=s.dtype, device=s.device)
        dv = dv.index_add_(0, dst, vmsg.reshape(-1, 3 * c)).view(n, 3, c)
        return ds, dv


class EquivariantGNN(BarrierModel):
    """PaiNN-style invariant barrier model with the SymGNN export contract (its own
    ``interact``, ``readout`` and ``forward``: the node state is split into s and v)."""

    def __init__(self, cfg: ModelConfig) -> None:
        if cfg.kind != "equivariant":
            raise ValueError(f"EquivariantGNN builds kind 'equivariant', got {cfg.kind!r}")
        c = cfg.node_dim
        super().__init__(cfg.kind, cfg.n_layers, 4 * c)
        self.channels = c
        self.n_rbf = cfg.n_rbf
        self.rbf = BesselRBF(cfg.n_rbf, cfg.r_max)
        self.embedding = nn.Embedding(len(cfg.type_names), c)
        self.layers = nn.ModuleList([PaiNNLayer(c, cfg.n_rbf) for _ in range(cfg.n_layers)])
        self.decoder = mlp_decoder(c, cfg.decoder_dim)
        add_label_scale(self)

    def _split(self, h: Tensor) -> tuple[Tensor, Tensor]:
        c = self.channels
        return h[:, :c], h[:, c:].reshape(-1, 3, c)

    @torch.jit.export
    def embed(self, species: Tensor, edge_index: Tensor, edge_vec: Tensor) -> tuple[Tensor, Tensor]:
        s = self.embedding(species)
        h = torch.cat(
            [s, torch.zeros((s.shape[0], 3 * self.channels), dtype=s.dtype, device=s.device)], 1
        )
        r = torch.linalg.vector_norm(edge_vec, dim=-1)
        unit = edge_vec / r.clamp_min(1e-9).unsqueeze(-1)
        e = torch.cat([self.rbf(r), unit], dim=1)
        return h, e

    @torch.jit.export
    def interact(
        self, layer: int, h: Tensor, e: Tensor, edge_index: Tensor, edge_weight: OptTensor = None
    ) -> tuple[Tensor, Tensor]:
        s, v = self._split(h)
        for i, mod in enumerate(self.layers):
            if i == layer:
                s, v = mod(s, v, e, edge_index, edge_weight)
                return torch.cat([s, v.reshape(-1, 3 * self.channels)], 1), e
        raise IndexError("layer out of range")

    @torch.jit.export
    def readout(self, h: Tensor) -> Tensor:
        return self._decode(h[:, : self.channels])

    def forward(
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_weight: OptTensor = None
    ) -> Tensor:
        # s and v stay split from layer to layer (interact flattens them for the contract)
        h, e = self.embed(species, edge_index, edge_vec)
        s, v = self._split(h)
        for mod in self.layers:
            s, v = mod(s, v, e, edge_index, edge_weight)
        return self._decode(s)
