"""The coarse-grained descriptor baseline (kind ``ridge``): radial densities, averaged over
neighbours with weights exp(-r/L), and a linear readout fitted in closed form.

Per atom i, with S species and K Gaussians centred from ``rbf_min`` to ``rbf_max``:

- ``g_i = [onehot(species_i) (S) | rho_i (S*K)]``, ``rho_i[s, k] = sum_j [species_j = s]
  exp(-(r_ij - mu_k)^2 / (2 sigma^2)) f_c(r_ij)`` over the neighbours within
  ``density_cutoff`` (f_c switches from 1 to 0 over the last 0.5 Å, so the densities are
  continuous);
- for every length L of ``smooth_lengths``: ``a_i^L = (g_i + sum_j w_L(r_ij) g_j) /
  (1 + sum_j w_L(r_ij))`` over the neighbours within r_max (10 Å), ``w_L(r) = exp(-r/L)
  f_c'(r)`` (f_c' switches off over the last 0.5 Å before r_max);
- with ``n_layers`` > 2, each further layer averages the previous averages once more over the
  same neighbours, each length with its own weights: ``a_i^{L,k+1} = (a_i^{L,k} + sum_j
  w_L(r_ij) a_j^{L,k}) / (1 + sum_j w_L(r_ij))``, so the averages reach k hops of r_max (on a
  5 Å graph, three hops reach about as far as one average over 10 Å);
- features ``h_i = [g_i | a_i^L1 | a_i^L2 | ... | a_i^{L1,2} | ...]`` and the barrier
  ``label_mean + label_std * (w . (h_i - feature_mean) / feature_std + b)``.

With ``node_inputs`` (``model.node_inputs: [pe]``, :class:`DescriptorRidgeInputs`), per-atom
values from the simulation's potential (standardized) join g after the densities, so every
average above averages them too, and the readout adds each input column times the indicator
of every species but the first; the module's ``embed`` then takes them as a fourth argument.

As an exported model (docs/contracts.md) this is ``n_layers`` layers on one graph of radius
r_max (two unless more hops are asked for):
``embed`` gives h = [onehot(species) | 0 ...] and the edge state ``e = [r | w_L1 | w_L2 |
...]``; ``interact(0)`` counts the radial densities g over the edges shorter than
``density_cutoff``; ``interact(1)`` averages g over every edge (r < r_max), ``interact(k)`` (k >= 2) averages
the previous averages; ``readout`` is the linear map. So an atom's output depends on atoms
within ``n_layers`` hops, as the contract's locality promises (in fact within (n_layers - 1)
r_max + density_cutoff), and the LAMMPS compute, which
refreshes ghost atoms' node states after every layer, reproduces it exactly on any number of
ranks. The node state has the fixed width ``feature_dim = (1 + (n_layers - 1) *
len(smooth_lengths)) * S * (K + 1)``; blocks not yet computed are zero. ``edge_weight`` scales an edge's contribution to
the densities and to the averages. The output depends on interatomic distances only: exactly
invariant under rotations and reflections.

The features are public through :mod:`symgnn_ase.data.descriptors`, and the readout is
fitted by :mod:`symgnn_ase.train.ridge`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .base import (
    BarrierModel,
    OptTensor,
    TakesNodeInputs,
    add_input_scale,
    add_label_scale,
    check_node_inputs,
)
from .config import ModelConfig

__all__ = ["DescriptorRidge", "DescriptorRidgeInputs", "switch"]

SWITCH_WIDTH = 0.5  # Å over which densities and averaging weights go smoothly to zero


def switch(r: Tensor, cutoff: float, width: float = SWITCH_WIDTH) -> Tensor:
    """1 below ``cutoff - width``, a cosine down to 0 at ``cutoff``, 0 beyond."""
    x = ((r - (cutoff - width)) / width).clamp(0.0, 1.0)
    return 0.5 * (torch.cos(math.pi * x) + 1.0)


class DescriptorRidge(BarrierModel):
    """Descriptor features (``embed`` + ``interact``) and a linear readout, with the export
    contract. Fit the readout with :func:`symgnn_ase.train.ridge.fit_ridge`.

    float64 by default (``dtype``; the exported file says so in its metadata, and the
    calculator and the compute then form edge vectors in float64): the fitted readout weighs
    a few hundred correlated features, which amplifies float32 round-off to ~1e-5 eV (visible
    as a spread under rotations); in float64 the model is invariant to ~1e-12 eV, for about
    the cost of a float32 forward. Edge vectors of either dtype are accepted. ``forward`` is
    :class:`BarrierModel`'s.
    """

    __constants__ = [
        "n_species",
        "n_gauss",
        "n_lengths",
        "base_dim",
        "dens_dim",
        "n_inputs",
        "density_cutoff",
        "r_max",
    ]

    def __init__(self, cfg: ModelConfig, dtype: torch.dtype | None = None) -> None:
        """``dtype`` defaults to the config's ``dtype`` (float64 unless it says float32)."""
        if cfg.kind != "ridge":
            raise ValueError(f"DescriptorRidge builds kind 'ridge', got {cfg.kind!r}")
        if dtype is None:
            dtype = torch.float32 if cfg.dtype == "float32" else torch.float64
        dens_dim = len(cfg.type_names) * (cfg.n_rbf + 1)
        n_inputs = len(cfg.node_inputs)
        base_dim = dens_dim + n_inputs  # [onehot | densities | node inputs]
        n_lengths = len(cfg.smooth_lengths)
        n_blocks = 1 + (cfg.n_layers - 1) * n_lengths
        super().__init__(cfg.kind, cfg.n_layers, n_blocks * base_dim)
        self.n_species = len(cfg.type_names)
        self.n_gauss = cfg.n_rbf
        self.n_lengths = len(cfg.smooth_lengths)
        self.base_dim = base_dim
        self.dens_dim = dens_dim
        self.n_inputs = n_inputs
        # readout features: the node state, plus each input column times the indicator of
        # every species but the first (a species' own slope for the inputs)
        readout_dim = self.feature_dim + (self.n_species - 1) * n_inputs * n_blocks
        self.density_cutoff = float(cfg.density_cutoff)
        self.r_max = float(cfg.r_max)
        f64 = torch.float64  # constants formed in float64, then rounded once to `dtype`
        centers = torch.linspace(cfg.rbf_min, cfg.rbf_max, cfg.n_rbf, dtype=f64)
        self.register_buffer("centers", centers.to(dtype))
        self.register_buffer("gamma", torch.tensor(1.0 / (2.0 * cfg.rbf_sigma**2), dtype=dtype))
        lengths = torch.tensor(cfg.smooth_lengths, dtype=f64)
        self.register_buffer("inv_lengths", (1.0 / lengths).to(dtype))
        self.register_buffer("feature_mean", torch.zeros(readout_dim, dtype=dtype))
        self.register_buffer("feature_std", torch.ones(readout_dim, dtype=dtype))
        self.linear = nn.Linear(readout_dim, 1, dtype=dtype)  # random until fitted
        add_label_scale(self)
        self.to(dtype)

    @torch.jit.export
    def embed(self, species: Tensor, edge_index: Tensor, edge_vec: Tensor) -> tuple[Tensor, Tensor]:
        """h = [onehot(species) | 0 ...], e = [r | averaging weights w_L] per edge."""
        edge_vec = edge_vec.to(self.centers.dtype)  # computed in the model's own dtype
        onehot = torch.nn.functional.one_hot(species, self.n_species).to(edge_vec.dtype)
        rest = torch.zeros(
            (species.shape[0], self.feature_dim - self.n_species),
            dtype=edge_vec.dtype,
            device=edge_vec.device,
        )
        return torch.cat([onehot, rest], dim=1), self._edge_state(edge_vec)

    def _edge_state(self, edge_vec: Tensor) -> Tensor:
        r = torch.linalg.vector_norm(edge_vec, dim=-1).unsqueeze(1)
        w = torch.exp(-r * self.inv_lengths) * switch(r, self.r_max)
        return torch.cat([r, w], dim=1)

    @torch.jit.export
    def interact(
        self, layer: int, h: Tensor, e: Tensor, edge_index: Tensor, edge_weight: OptTensor = None
    ) -> tuple[Tensor, Tensor]:
        """Layer 0: radial densities; layer 1: their weighted neighbour averages; layer k >= 2:
        the averages of layer k - 1 averaged again."""
        if layer == 0:
            return self._densities(h, e, edge_index, edge_weight), e
        if layer < self.n_layers:
            return self._averages(layer, h, e, edge_index, edge_weight), e
        raise IndexError("layer out of range")

    def _densities(
        self, h: Tensor, e: Tensor, edge_index: Tensor, edge_weight: OptTensor
    ) -> Tensor:
        n = h.shape[0]
        s = self.n_species
        r = e[:, 0]
        near = torch.nonzero(r < self.density_cutoff).squeeze(1)
        rn = r.index_select(0, near)
        cut = switch(rn, self.density_cutoff)
        if edge_weight is not None:
            cut = cut * edge_weight.index_select(0, near)
        gauss = torch.exp(-self.gamma * (rn.unsqueeze(1) - self.centers) ** 2) * cut.unsqueeze(1)
        src = edge_index[0].index_select(0, near)
        dst = edge_index[1].index_select(0, near)
        # the sender's species from its one-hot block (ghost atoms carry theirs)
        sender_species = h[:, :s].index_select(0, src).argmax(1)
        rho = torch.zeros((n * s, self.n_gauss), dtype=h.dtype, device=h.device)
        rho = rho.index_add_(0, dst * s + sender_species, gauss).view(n, s * self.n_gauss)
        rest = torch.zeros((n, self.feature_dim - self.base_dim), dtype=h.dtype, device=h.device)
        # the node inputs (if any) stay where embed put them, after the densities
        inputs = h[:, self.dens_dim : self.base_dim]
        return torch.cat([h[:, :s], rho, inputs, rest], dim=1)

    def _averages(
        self, layer: int, h: Tensor, e: Tensor, edge_index: Tensor, edge_weight: OptTensor
    ) -> Tensor:
        """Layer ``layer`` >= 1 writes block ``layer`` of averages: the densities g averaged
        over the neighbours (layer 1), or block ``layer - 1`` averaged again (layer >= 2),
        each length L with its own weights w_L."""
        n = h.shape[0]
        d = self.base_dim
        nl = self.n_lengths
        width = nl * d
        start = d + (layer - 1) * width  # where block `layer` goes
        if layer == 1:
            prev = h[:, :d].unsqueeze(1)  # [n, 1, d]: g, the same for every length
        else:
            prev = h[:, start - width : start].reshape(n, nl, d)
        w = e[:, 1:]
        if edge_weight is not None:
            w = w * edge_weight.unsqueeze(1)
        src = edge_index[0]
        dst = edge_index[1]
        num = torch.zeros((n, width), dtype=h.dtype, device=h.device)
        den = torch.ones((n, nl), dtype=h.dtype, device=h.device).index_add_(0, dst, w)
        # edges per chunk: the [chunk, L, d] products stay in cache (3x faster than 32k)
        step = 2048
        for s0 in range(0, src.shape[0], step):
            ps = prev.index_select(0, src[s0 : s0 + step])
            prod = (w[s0 : s0 + step].unsqueeze(2) * ps).reshape(-1, width)
            num.index_add_(0, dst[s0 : s0 + step], prod)
        avg = (num.view(n, nl, d) + prev) / den.unsqueeze(2)
        return torch.cat([h[:, :start], avg.reshape(n, width), h[:, start + width :]], dim=1)

    @torch.jit.export
    def readout(self, h: Tensor) -> Tensor:
        return self.linear_readout(h)

    def readout_features(self, h: Tensor) -> Tensor:
        """The columns the linear readout weighs: the node state itself."""
        return h

    def linear_readout(self, x: Tensor) -> Tensor:
        """The barrier (eV) from readout features ``x`` (:meth:`readout_features`)."""
        z = (x - self.feature_mean) / self.feature_std
        return self.linear(z).squeeze(-1) * self.label_std + self.label_mean


class DescriptorRidgeInputs(TakesNodeInputs, DescriptorRidge):
    """Kind ``ridge`` with per-atom inputs from the simulation's potential (``model.node_inputs``,
    issue 27; the file's ``node_inputs`` metadata names them, :mod:`symgnn_ase.potential.inputs`).

    ``embed(species, edge_index, edge_vec, node_inputs)`` puts the inputs (float64 ``[N,
    n_inputs]``, standardized by one mean and std per input over the training atoms) after the
    radial densities, so that the averaging layers average them over the neighbours with the
    same weights exp(-r/L) (self weight 1, within r_max) as the densities; the readout also
    weighs each input column times the indicator of every species but the first.
    ``forward(species, edge_index, edge_vec, edge_weight=None, node_inputs=None)``: the inputs
    are required (None is an error).
    """

    def __init__(self, cfg: ModelConfig, dtype: torch.dtype | None = None) -> None:
        if not cfg.node_inputs:
            raise ValueError("DescriptorRidgeInputs needs model.node_inputs")
        super().__init__(cfg, dtype)
        dtype = self.centers.dtype
        add_input_scale(self, self.n_inputs, dtype)
        n_blocks = self.feature_dim // self.base_dim
        # the input columns of every block: the inputs and each of their averages
        cols = [
            b * self.base_dim + self.dens_dim + k
            for b in range(n_blocks)
            for k in range(self.n_inputs)
        ]
        self.register_buffer("input_cols", torch.tensor(cols, dtype=torch.int64))

    @torch.jit.export
    def embed(  # type: ignore[override]
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, node_inputs: Tensor
    ) -> tuple[Tensor, Tensor]:
        """h = [onehot(species) | 0 | standardized node inputs | 0 ...], e as without inputs."""
        check_node_inputs(node_inputs, species, self.n_inputs)
        edge_vec = edge_vec.to(self.centers.dtype)
        n = species.shape[0]
        onehot = torch.nn.functional.one_hot(species, self.n_species).to(edge_vec.dtype)
        x = (node_inputs.to(edge_vec.dtype) - self.input_mean) / self.input_std
        gap = torch.zeros((n, self.dens_dim - self.n_species), dtype=x.dtype, device=x.device)
        rest = torch.zeros((n, self.feature_dim - self.base_dim), dtype=x.dtype, device=x.device)
        return torch.cat([onehot, gap, x, rest], dim=1), self._edge_state(edge_vec)

    def readout_features(self, h: Tensor) -> Tensor:
        """The node state, then its input columns times each species indicator but the first."""
        cols = h.index_select(1, self.input_cols)
        prods = [cols * h[:, s : s + 1] for s in range(1, self.n_species)]
        return torch.cat([h] + prods, dim=1)

    @torch.jit.export
    def readout(self, h: Tensor) -> Tensor:
        return self.linear_readout(self.readout_features(h))
