"""Hyperparameters of every model kind (no torch import)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["MODEL_KINDS", "ModelConfig"]

MODEL_KINDS = ("symgnn", "raw", "length", "equivariant", "schnet", "ridge")
# kinds whose layers are EGAT layers with one head count per layer
ATTENTION_KINDS = ("symgnn", "raw", "length")
# how an EGAT layer standardizes its attention aggregate
AGG_NORMS = ("batch", "layer")
#: the most layers of kind `ridge` (densities, then up to 15 hops of averaging)
MAX_RIDGE_LAYERS = 16


@dataclass
class ModelConfig:
    """Hyperparameters of every model kind (unused fields are ignored by a kind).

    kind: ``symgnn`` (learned distribution over O(3), the paper's method), ``raw``
    (no symmetrization: raw edge vectors), ``length`` (edge length only,
    invariant), ``equivariant`` (PaiNN-style, exactly O(3)-invariant output),
    ``schnet`` (SchNet-style continuous-filter convolutions on a species-resolved Gaussian
    basis, invariant), ``ridge`` (the coarse-grained descriptor baseline: radial densities
    averaged over r_max with weights exp(-r/L), and a linear readout fitted in closed form).

    Descriptor (``ridge``) options: ``n_rbf`` Gaussians centred from ``rbf_min`` to
    ``rbf_max`` with width ``rbf_sigma`` per neighbour species, counted within
    ``density_cutoff``; ``smooth_lengths`` the averaging lengths L (Å); r_max the
    averaging radius; n_layers 2 (densities, then averages) or more (the averages averaged
    again, n_layers - 1 hops); ``dtype`` the precision the model computes in (``float64``, or
    ``float32`` to join an ensemble of float32 models).
    """

    kind: str = "symgnn"
    type_names: list[str] = field(default_factory=lambda: ["Cu", "Zr"])
    r_max: float = 5.0
    n_layers: int = 4
    node_dim: int = 64
    edge_dim: int = 32
    heads: list[int] = field(default_factory=lambda: [8, 4, 2, 1])
    n_samples: int = 4  # transforms drawn per distribution while training
    n_samples_eval: int = 16  # transforms fixed for evaluation and export
    init_sigma: float = 1.0  # initial spread (rad) of the wrapped-normal angles
    edge_input_scale: float = 0.5  # Å; edge vectors enter the encoder MLP as D / scale
    n_rbf: int = 16
    decoder_dim: int = 64
    sample_seed: int = 12345
    rbf_min: float = 2.2  # ridge: first Gaussian centre (Å)
    rbf_max: float = 5.0  # ridge: last Gaussian centre (Å)
    rbf_sigma: float = 0.15  # ridge: Gaussian width (Å)
    density_cutoff: float = 5.5  # ridge: radius of the radial densities (Å)
    smooth_lengths: list[float] = field(default_factory=lambda: [1.0, 2.0, 4.0])
    dtype: str | None = None  # ridge: "float64" (when None) or "float32"; other kinds: None
    agg_norm: str = "batch"  # EGAT kinds: "batch" (over atoms) or "layer" (per atom)
    # EGAT kinds: M > 1 makes a shallow ensemble (nn/shallow.py): the decoder's last layer has M
    # outputs; the barrier is their mean, its uncertainty their spread
    readout_heads: int = 1
    # ridge and EGAT kinds: per-atom inputs from the simulation's potential (issue 27;
    # potential/inputs.py), e.g. ["pe"]: ridge, extra density channels averaged over the
    # neighbours like the densities; EGAT kinds, added to the species embedding (nn/inputs.py)
    node_inputs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._check_types()
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"model kind must be one of {list(MODEL_KINDS)}, got {self.kind!r}")
        if self.r_max <= 0 or not math.isfinite(self.r_max):
            raise ValueError(f"r_max must be a positive finite number of Å, got {self.r_max}")
        if self.n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {self.n_layers}")
        if self.kind in ATTENTION_KINDS and len(self.heads) != self.n_layers:
            raise ValueError(
                f"heads must list one head count per layer ({self.n_layers}), got {self.heads}"
            )
        for h in self.heads if self.kind in ATTENTION_KINDS else []:
            if h < 1 or self.node_dim % h:
                raise ValueError(f"every head count must divide node_dim={self.node_dim}, got {h}")
        if len(set(self.type_names)) != len(self.type_names) or not self.type_names:
            raise ValueError(f"type_names must be distinct and non-empty, got {self.type_names}")
        if self.readout_heads > 1 and self.kind not in ATTENTION_KINDS:
            raise ValueError(
                f"model.readout_heads > 1 (a shallow ensemble) needs an EGAT kind "
                f"{list(ATTENTION_KINDS)}, got kind {self.kind!r}"
            )
        if self.agg_norm not in AGG_NORMS:
            raise ValueError(
                f"model.agg_norm must be one of {list(AGG_NORMS)}, got {self.agg_norm!r}"
            )
        if self.node_inputs:
            self._check_node_inputs()
        if self.kind == "ridge":
            self._check_descriptor()
        elif self.dtype is not None:
            raise ValueError(
                f"model.dtype is an option of kind 'ridge' (the other kinds compute in float32), "
                f"got dtype {self.dtype!r} for kind {self.kind!r}"
            )

    def _check_descriptor(self) -> None:
        """The descriptor options of kind ``ridge`` are consistent."""
        if self.n_layers < 2:
            raise ValueError(
                "model kind 'ridge' has at least two layers (radial densities, then their "
                f"averages, then further hops of averaging): n_layers must be >= 2, got "
                f"{self.n_layers}"
            )
        if self.dtype not in (None, "float64", "float32"):
            raise ValueError(f"model.dtype must be 'float64' or 'float32', got {self.dtype!r}")
        if self.n_layers > MAX_RIDGE_LAYERS:
            raise ValueError(
                f"model kind 'ridge' has at most {MAX_RIDGE_LAYERS} layers (each one adds "
                f"len(smooth_lengths) x species x (n_rbf + 1) features per atom and reaches "
                f"r_max further), got n_layers {self.n_layers}"
            )
        if self.rbf_max < self.rbf_min:
            raise ValueError(
                f"model.rbf_max ({self.rbf_max}) must be >= model.rbf_min ({self.rbf_min})"
            )
        if self.density_cutoff > self.r_max:
            raise ValueError(
                f"model.density_cutoff ({self.density_cutoff} Å) must be <= r_max "
                f"({self.r_max} Å): the densities are counted on the model's graph"
            )
        if not self.smooth_lengths:
            raise ValueError("model.smooth_lengths must list at least one length (Å)")

    def _check_node_inputs(self) -> None:
        """``node_inputs``: kinds ridge and the EGAT kinds with one readout head, known names."""
        if self.kind not in ("ridge",) + ATTENTION_KINDS or self.readout_heads > 1:
            raise ValueError(
                f"model.node_inputs (per-atom inputs from the potential) is an option of kinds "
                f"{['ridge', *ATTENTION_KINDS]} with one readout head, got node_inputs "
                f"{self.node_inputs} for kind {self.kind!r} with readout_heads "
                f"{self.readout_heads}"
            )
        from ..potential.inputs import NODE_INPUT_KINDS

        unknown = [n for n in self.node_inputs if n not in NODE_INPUT_KINDS]
        if unknown or len(set(self.node_inputs)) != len(self.node_inputs):
            raise ValueError(
                f"model.node_inputs must list distinct inputs of {sorted(NODE_INPUT_KINDS)}, "
                f"got {self.node_inputs}"
            )

    def _check_types(self) -> None:
        """Every option has its annotated type (a string where a number belongs is an error)."""
        ints = ("n_layers", "node_dim", "edge_dim", "n_samples", "n_samples_eval", "n_rbf")
        ints += ("decoder_dim", "sample_seed", "readout_heads")
        floats = ("r_max", "init_sigma", "edge_input_scale", "rbf_min", "rbf_max", "rbf_sigma")
        floats += ("density_cutoff",)
        for name in ints:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"model.{name} must be an integer, got {v!r}")
            if v < (0 if name == "sample_seed" else 1):
                raise ValueError(f"model.{name} must be >= 1, got {v!r}")
        for name in floats:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"model.{name} must be a finite number, got {v!r}")
            if not math.isfinite(v) or v <= 0:
                raise ValueError(f"model.{name} must be a positive finite number, got {v!r}")
        if not isinstance(self.kind, str):
            raise ValueError(f"model.kind must be a string, got {self.kind!r}")
        if not isinstance(self.type_names, list) or not all(
            isinstance(t, str) and t for t in self.type_names
        ):
            raise ValueError(
                f"model.type_names must be a list of element names, got {self.type_names!r}"
            )
        if not isinstance(self.heads, list) or not all(
            isinstance(h, int) and not isinstance(h, bool) for h in self.heads
        ):
            raise ValueError(f"model.heads must be a list of integers, got {self.heads!r}")
        if not isinstance(self.node_inputs, list) or not all(
            isinstance(v, str) for v in self.node_inputs
        ):
            raise ValueError(
                f"model.node_inputs must be a list of input names, got {self.node_inputs!r}"
            )
        if not isinstance(self.smooth_lengths, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
            for v in self.smooth_lengths
        ):
            raise ValueError(
                f"model.smooth_lengths must be a list of lengths > 0 (Å), got "
                f"{self.smooth_lengths!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.readout_heads == 1:  # a single head: the dict of the files written before
            del out["readout_heads"]
        if not self.node_inputs:  # no inputs: the dict of the files written before
            del out["node_inputs"]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model option(s) {unknown}; known: {sorted(known)}")
        return cls(**data)
