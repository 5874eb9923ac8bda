"""The SymGNN model: a symmetrization module and an EGAT prediction module.

Every model of this package exposes the exported-model contract of docs/contracts.md:
``embed``, ``interact(layer, ...)``, ``readout`` and ``forward`` (their
composition), all TorchScript-compatible, with node states of a fixed width
``feature_dim`` between layers so that the LAMMPS compute can exchange them.

Edge convention: ``edge_index[0]`` is the sender j, ``edge_index[1]`` the
receiver i, and ``edge_vec`` is r_j - r_i (+ periodic shift), in Å.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .base import BarrierModel, OptTensor, add_label_scale
from .config import ModelConfig
from .ops import fused_ops_available

__all__ = ["ModelConfig", "SymGNN", "EGATLayer", "Symmetrizer", "euler_matrices"]


def euler_matrices(angles: Tensor) -> Tensor:
    """T = Ox1(a) Ox2(b) Ox3(g) for angles [K, 3] -> [K, 3, 3], differentiable."""
    ca, cb, cg = torch.cos(angles).unbind(-1)
    sa, sb, sg = torch.sin(angles).unbind(-1)
    one = torch.ones_like(ca)
    zero = torch.zeros_like(ca)
    rx = torch.stack([one, zero, zero, zero, ca, -sa, zero, sa, ca], -1).view(-1, 3, 3)
    ry = torch.stack([cb, zero, sb, zero, one, zero, -sb, zero, cb], -1).view(-1, 3, 3)
    rz = torch.stack([cg, -sg, zero, sg, cg, zero, zero, zero, one], -1).view(-1, 3, 3)
    return rx @ ry @ rz


class Symmetrizer(nn.Module):
    """Sum of one edge encoder over 2K orthogonal transforms of each edge vector.

    Two wrapped-normal distributions over Euler angles (one for rotations T, one
    for non-rotations -T) with learned means and spreads. Sampling is
    reparameterized (angle = mu + sigma * eps), so both receive gradients.
    In training K fresh samples are drawn per call; in eval mode the transforms
    come from a fixed, seeded noise buffer, so inference is deterministic and
    equals what gets exported.
    """

    def __init__(self, edge_dim: int, cfg: ModelConfig) -> None:
        super().__init__()
        # D / r_max would leave the averaged encoding almost constant across edges (its
        # |D| dependence comes from the MLP's curvature only): scale so SiLU bends
        self.input_scale = cfg.edge_input_scale
        self.edge_dim = edge_dim
        self.n_samples = cfg.n_samples
        log_sigma = math.log(cfg.init_sigma)
        self.mu = nn.Parameter(torch.zeros(2, 3))  # [rotation|reflection, angle]
        self.log_sigma = nn.Parameter(torch.full((2, 3), log_sigma))
        gen = torch.Generator().manual_seed(cfg.sample_seed)
        self.register_buffer("eval_noise", torch.randn(2, cfg.n_samples_eval, 3, generator=gen))
        self.lin1 = nn.Linear(3, edge_dim)
        self.lin2 = nn.Linear(edge_dim, edge_dim)

    def transforms(self, noise: Tensor) -> Tensor:
        """[2, K, 3] standard-normal noise -> [2K, 3, 3] orthogonal matrices."""
        angles = self.mu[:, None, :] + torch.exp(self.log_sigma)[:, None, :] * noise
        rot = euler_matrices(angles[0])
        refl = -euler_matrices(angles[1])
        return torch.cat([rot, refl], 0)

    @torch.jit.unused
    def set_eval_samples(self, n_samples: int, seed: int) -> None:
        """Redraw the fixed evaluation transforms: ``n_samples`` per distribution."""
        if n_samples < 1:
            raise ValueError(f"the number of transforms must be >= 1, got {n_samples}")
        gen = torch.Generator().manual_seed(seed)
        noise = torch.randn(2, n_samples, 3, generator=gen)
        self.eval_noise = noise.to(device=self.mu.device, dtype=self.mu.dtype)

    def current_transforms(self) -> Tensor:
        if self.training:
            noise = torch.randn(2, self.n_samples, 3, device=self.mu.device, dtype=self.mu.dtype)
        else:
            noise = self.eval_noise
        return self.transforms(noise)

    def forward(self, vec: Tensor) -> Tensor:
        t = self.current_transforms()  # [M, 3, 3]
        m = t.shape[0]
        # first layer is linear: W1 (T x) = (W1 T) x, one matmul for all M copies
        w = torch.matmul(self.lin1.weight.unsqueeze(0), t)  # [M, D, 3]
        w = w.permute(2, 0, 1).reshape(3, -1)  # [3, M*D]
        pre = torch.matmul(vec / self.input_scale, w) + self.lin1.bias.repeat(m)
        hidden = torch.nn.functional.silu(pre).view(vec.shape[0], m, self.edge_dim).sum(1)
        # second layer is linear too: sum_k (W2 a_k + b2) = W2 sum_k a_k + M b2
        return torch.nn.functional.linear(hidden, self.lin2.weight, self.lin2.bias * m) / m


class RawEncoder(nn.Module):
    """Ablation: the edge encoder on raw (unsymmetrized) vectors."""

    def __init__(self, edge_dim: int, input_scale: float) -> None:
        super().__init__()
        self.input_scale = input_scale
        self.mlp = nn.Sequential(nn.Linear(3, edge_dim), nn.SiLU(), nn.Linear(edge_dim, edge_dim))

    def forward(self, vec: Tensor) -> Tensor:
        return self.mlp(vec / self.input_scale)


class GaussianRBF(nn.Module):
    """Gaussians on [0, r_max] (the invariant edge-length input)."""

    def __init__(self, n_rbf: int, r_max: float) -> None:
        super().__init__()
        self.register_buffer("centers", torch.linspace(0.0, r_max, n_rbf))
        self.gamma = float((n_rbf / r_max) ** 2)

    def forward(self, r: Tensor) -> Tensor:
        return torch.exp(-self.gamma * (r.unsqueeze(-1) - self.centers) ** 2)


class LengthEncoder(nn.Module):
    """Ablation: edge length only (exactly invariant, no angular information)."""

    def __init__(self, edge_dim: int, r_max: float, n_rbf: int) -> None:
        super().__init__()
        self.rbf = GaussianRBF(n_rbf, r_max)
        self.mlp = nn.Sequential(
            nn.Linear(n_rbf, edge_dim), nn.SiLU(), nn.Linear(edge_dim, edge_dim)
        )

    def forward(self, vec: Tensor) -> Tensor:
        return self.mlp(self.rbf(torch.linalg.vector_norm(vec, dim=-1)))


def mlp_decoder(in_dim: int, hidden: int, n_out: int = 1) -> nn.Sequential:
    """The per-atom readout MLP: in_dim -> hidden -> hidden -> n_out (SiLU); n_out > 1: the
    heads of a shallow ensemble (:class:`symgnn_ase.nn.shallow.ShallowSymGNN`)."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden),
        nn.SiLU(),
        nn.Linear(hidden, hidden),
        nn.SiLU(),
        nn.Linear(hidden, n_out),
    )


def inference_on_cpu(training: bool, x: Tensor) -> bool:
    """Whether a layer may use the fused operators: inference, no autograd, CPU float32."""
    return (
        not training
        and not torch.is_grad_enabled()
        and x.device.type == "cpu"
        and x.dtype == torch.float32
    )


def segment_softmax(logits: Tensor, index: Tensor, n: int) -> Tensor:
    """Softmax of [E, H] logits over the edges sharing a receiver."""
    h = logits.shape[1]
    idx = index.unsqueeze(1).expand(-1, h)
    mx = torch.full((n, h), -math.inf, dtype=logits.dtype, device=logits.device)
    mx = mx.scatter_reduce(0, idx, logits.detach(), "amax", include_self=True)
    ex = torch.exp(logits - mx.index_select(0, index))
    den = torch.zeros((n, h), dtype=logits.dtype, device=logits.device).index_add_(0, index, ex)
    return ex / den.index_select(0, index)


class EGATLayer(nn.Module):
    """Edge-featured graph attention (EGAT) with edge update, skip and LayerNorm.

    f_ij = LeakyReLU(A h_i + B h_j + C e_ij) per head; attention logits
    a . f_ij, softmax over the receiver's incoming edges; the node update
    aggregates attention-weighted values (V h_j + f_ij); the edge update adds
    a projection of f_ij. Node width ``node_dim`` and edge width ``edge_dim``
    stay fixed; heads * head_dim = node_dim.
    """

    # `fused`: use symgnn::egat_edges for inference (a constant when scripted, so a model
    # built without the operator library never names it)
    # `update_edges`: False on the last layer, whose edge states nothing reads (they
    # come back unchanged)
    __constants__ = ["fused", "update_edges"]

    def __init__(
        self,
        node_dim: int,
        edge_dim: int,
        heads: int,
        update_edges: bool = True,
        agg_norm: str = "batch",
    ) -> None:
        super().__init__()
        self.fused = fused_ops_available()
        self.update_edges = update_edges
        self.heads = heads
        self.head_dim = node_dim // heads
        width = heads * self.head_dim
        self.node_proj = nn.Linear(node_dim, 3 * width)
        self.edge_proj = nn.Linear(edge_dim, width, bias=False)
        self.attn = nn.Parameter(torch.randn(heads, self.head_dim) / math.sqrt(self.head_dim))
        # softmax attention averages ~30 neighbors, so the aggregate varies little between
        # atoms; standardizing it over atoms (running statistics at inference: a fixed
        # per-feature affine map, local and deterministic) makes that variation usable
        # agg_norm "layer": each atom's aggregate standardized over its own features instead
        # (no statistics over atoms: nothing a thermal shift of the aggregate can saturate)
        self.norm_agg = nn.BatchNorm1d(width) if agg_norm == "batch" else nn.LayerNorm(width)
        self.node_out = nn.Linear(width, node_dim)
        self.edge_out = nn.Linear(width, edge_dim)
        self.norm_h = nn.LayerNorm(node_dim)
        self.norm_e = nn.LayerNorm(edge_dim)

    def forward(
        self, h: Tensor, e: Tensor, edge_index: Tensor, edge_weight: OptTensor = None
    ) -> tuple[Tensor, Tensor]:
        agg, e = self.edges(self.node_proj(h), e, edge_index, edge_weight)
        h = self.norm_h(h + torch.nn.functional.silu(self.node_out(self.norm_agg(agg))))
        return h, e

    def edges(
        self, p: Tensor, e: Tensor, edge_index: Tensor, edge_weight: OptTensor
    ) -> tuple[Tensor, Tensor]:
        """Attention aggregate of each receiver [N, width] and the new edge states."""
        if self.fused:
            if inference_on_cpu(self.training, p):
                return torch.ops.symgnn.egat_edges(
                    p,
                    e,
                    edge_index,
                    self.edge_proj.weight,
                    self.attn,
                    self.edge_out.weight,
                    self.edge_out.bias,
                    self.norm_e.weight,
                    self.norm_e.bias,
                    self.norm_e.eps,
                    0.2,
                    edge_weight,
                    self.update_edges,
                )
        src = edge_index[0]
        dst = edge_index[1]
        n = p.shape[0]
        width = self.heads * self.head_dim
        p_dst, p_src, value = p.split(width, dim=1)
        f = p_dst.index_select(0, dst) + p_src.index_select(0, src) + self.edge_proj(e)
        f = torch.nn.functional.leaky_relu(f, 0.2)
        logits = (f.view(-1, self.heads, self.head_dim) * self.attn).sum(-1)
        alpha = segment_softmax(logits, dst, n)
        if edge_weight is not None:
            alpha = alpha * edge_weight.unsqueeze(1)
        # values carry the sender's state and the edge's attention feature, so geometry
        # reaches the nodes directly, not only through the attention weights
        msg = (value.index_select(0, src) + f).view(-1, self.heads, self.head_dim)
        msg = msg * alpha.unsqueeze(-1)
        agg = torch.zeros((n, width), dtype=p.dtype, device=p.device)
        agg = agg.index_add_(0, dst, msg.view(-1, width))
        if self.update_edges:
            e = self.norm_e(e + self.edge_out(f))
        return agg, e


class SymGNN(BarrierModel):
    """Symmetrization (or an ablation encoder) + EGAT layers + MLP decoder.

    The decoder output is de-standardized with the training-label mean and
    standard deviation held as buffers, so the model predicts eV. ``interact``,
    ``readout`` and ``forward`` are :class:`BarrierModel`'s.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg.kind, cfg.n_layers, cfg.node_dim)
        if cfg.kind == "symgnn":
            self.encoder = Symmetrizer(cfg.edge_dim, cfg)
        elif cfg.kind == "raw":
            self.encoder = RawEncoder(cfg.edge_dim, cfg.edge_input_scale)
        elif cfg.kind == "length":
            self.encoder = LengthEncoder(cfg.edge_dim, cfg.r_max, cfg.n_rbf)
        else:
            raise ValueError(f"SymGNN does not build model kind {cfg.kind!r}")
        self.embedding = nn.Embedding(len(cfg.type_names), cfg.node_dim)
        self.edge_norm = nn.LayerNorm(cfg.edge_dim)
        heads = cfg.heads[: cfg.n_layers]
        self.layers = nn.ModuleList(
            [
                EGATLayer(
                    cfg.node_dim,
                    cfg.edge_dim,
                    h,
                    update_edges=k + 1 < len(heads),
                    agg_norm=cfg.agg_norm,
                )
                for k, h in enumerate(heads)
            ]
        )
        self.decoder = mlp_decoder(cfg.node_dim, cfg.decoder_dim, cfg.readout_heads)
        add_label_scale(self)

    @torch.jit.export
    def embed(self, species: Tensor, edge_index: Tensor, edge_vec: Tensor) -> tuple[Tensor, Tensor]:
        return self._embed(species, edge_vec)

    def _embed(self, species: Tensor, edge_vec: Tensor) -> tuple[Tensor, Tensor]:
        """The species embedding and the encoded, normalized edges (TorchScript has no
        ``super()``: kinds that extend ``embed`` call this)."""
        h = self.embedding(species)
        if inference_on_cpu(self.training, edge_vec):
            # edge by edge anyway: in chunks, the encoder's intermediates stay in cache
            e = torch.empty(
                (edge_vec.shape[0], self.edge_norm.normalized_shape[0]),
                dtype=edge_vec.dtype,
                device=edge_vec.device,
            )
            step = 4096
            for start in range(0, edge_vec.shape[0], step):
                chunk = edge_vec[start : start + step]
                e[start : start + step] = self.edge_norm(self.encoder(chunk))
            return h, e
        e = self.edge_norm(self.encoder(edge_vec))
        return h, e
