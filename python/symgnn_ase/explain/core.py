"""Which neighbors drive an atom's predicted barrier: GNNExplainer for node regression.

The paper (§4.4) replaces GNNExplainer's entropy objective by the mean squared
error between the masked and the unmasked prediction. For one explained atom
``a`` we learn a soft mask ``m = sigmoid(z)`` over the directed edges that can
influence ``a`` and minimize::

    ((f_a(G, m) - f_a(G)) / s)^2 + size_weight * sum(m) + entropy_weight * mean(H(m))

where ``f_a(G, m)`` is the model run with every edge's attention (SymGNN) or
message (equivariant model) multiplied by its mask value (the models'
``edge_weight`` argument) and ``H`` the binary entropy. The importances are ``m``
after optimization. The error unit ``s`` (``scale``) is by default
``|f_a(G) - f_a(G, 0)|``, how far the prediction moves when every edge is
switched off (at least 2 % of the label std): the error is then the fraction of
the atom's structural contribution the mask fails to reproduce, so one penalty
weight suits atoms and models whose predictions depend on structure weakly or
strongly. ``label_std`` (standardized error, as in training) and ``none`` (eV²,
the paper's plain MSE) are the alternatives.

The computation runs on the atom's receptive field only: the nodes within
``n_layers`` hops along incoming edges and the edges whose receiver is within
``n_layers - 1`` hops (the only edges that can change ``f_a``). With an
exported model (``embed``/``interact``/``readout``), layer ``l`` only gets the
edges whose receiver is within ``n_layers - 1 - l`` hops, which gives the same
number at a fraction of the cost; the subgraph prediction is checked against the
full-structure prediction for every atom.

Distances of an edge ``j -> i`` from the explained atom: ``hop`` is the hop
distance of its receiver ``i`` (0: an edge into the atom itself) and
``distance`` the Euclidean distance of the edge midpoint ``r_i + D_ij / 2`` from
the atom, with positions unwrapped around the atom by walking the edge vectors
outward from it (so periodic images are placed next to the atom).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .graph import (
    ExplainGraph,
    Subgraph,
    _check_atom,
    build_explain_graph,
    extract_subgraph,
)
from .tables import importance_vs_distance, write_edges_csv

logger = logging.getLogger(__name__)

__all__ = [
    "ExplainConfig",
    "ExplainGraph",
    "Subgraph",
    "Explanation",
    "Explainer",
    "build_explain_graph",
    "extract_subgraph",
    "importance_vs_distance",
    "write_edges_csv",
]

_EPS = 1e-12
#: subgraph and full-structure predictions must agree to this (relative to the scale s)
LOCALITY_TOL = 1e-4
#: random K-edge subsets drawn for the fidelity baseline
N_RANDOM_BASELINE = 8
#: error units: |f(all) - f(no edges)|, the model's label std, or 1 eV
SCALES = ("empty", "label_std", "none")
#: the "empty" unit is at least this fraction of the label std (an atom whose structural
#: contribution happens to be ~0 must not blow the error up)
SCALE_FLOOR = 0.02


@dataclass(frozen=True)
class ExplainConfig:
    """Settings of the mask optimization and of the fidelity report."""

    epochs: int = 100
    lr: float = 0.05
    size_weight: float = 0.001
    entropy_weight: float = 1.0
    seed: int = 0
    top_k: int = 50
    init_logit: float = 0.0  # initial masks sigmoid(0) = 0.5, as GNNExplainer
    init_std: float = 0.1
    scale: str = "empty"  # error unit s: "empty", "label_std" or "none" (see module doc)

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or int(self.epochs) != self.epochs or self.epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {self.epochs}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        for name in ("size_weight", "entropy_weight", "init_std"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {list(SCALES)}, got {self.scale!r}")
        if not math.isfinite(self.init_logit):
            raise ValueError(f"init_logit must be finite, got {self.init_logit}")
        if isinstance(self.top_k, bool) or int(self.top_k) != self.top_k or self.top_k < 1:
            raise ValueError(f"top_k must be an integer >= 1, got {self.top_k}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Runner:
    """The explained atom's prediction as a function of the edge weights of its subgraph."""

    def __init__(
        self,
        module: Any,
        n_layers: int,
        sub: Subgraph,
        graph: ExplainGraph,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        self.module = module
        self.n_layers = n_layers
        self.counts = sub.n_edges_per_layer
        self.species = torch.from_numpy(graph.species[sub.nodes]).to(device)
        self.edge_index = torch.from_numpy(np.stack([sub.local_sender, sub.local_receiver])).to(
            device
        )
        self.edge_vec = torch.from_numpy(graph.vec[sub.edges]).to(device=device, dtype=dtype)
        self.dtype = dtype
        self.device = device
        self.staged = all(hasattr(module, name) for name in ("embed", "interact", "readout"))
        self._h0: Tensor | None = None
        self._e0: Tensor | None = None
        if self.staged:
            with torch.no_grad():
                self._h0, self._e0 = module.embed(self.species, self.edge_index, self.edge_vec)

    def __call__(self, weight: Tensor | None) -> Tensor:
        if not self.staged:
            out = self.module(self.species, self.edge_index, self.edge_vec, weight)
            return out[0]
        assert self._h0 is not None and self._e0 is not None
        h, e = self._h0, self._e0
        for layer in range(self.n_layers):
            n = self.counts[layer]
            w = None if weight is None else weight[:n]
            h, e = self.module.interact(layer, h, e[:n], self.edge_index[:, :n], w)
        return self.module.readout(h[:1])[0]

    def hard(self, keep: np.ndarray) -> float:
        """Prediction with weight 1 on the edges in the boolean ``keep``, 0 elsewhere."""
        w = torch.from_numpy(keep.astype(np.float64)).to(device=self.device, dtype=self.dtype)
        with torch.no_grad():
            return float(self(w))


@dataclass
class Explanation:
    """One atom's explanation: per-edge importances (subgraph edge order) and fidelity."""

    atom: int
    species: str
    subgraph: Subgraph
    importance: np.ndarray  # [e] mask values in [0, 1]
    edge_length: np.ndarray  # [e] Å
    distance: np.ndarray  # [e] edge midpoint distance from the atom, Å
    prediction: float  # full-structure prediction (eV)
    subgraph_prediction: float
    fidelity: dict[str, float]
    loss: dict[str, float]
    time_s: float  # wall clock
    cpu_time_s: float  # this process's CPU time (all threads)
    top_k: int

    @property
    def order(self) -> np.ndarray:
        """Subgraph edge positions sorted by importance, most important first."""
        return np.argsort(-self.importance, kind="stable")

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers (no per-edge arrays)."""
        sub = self.subgraph
        return {
            "atom": self.atom,
            "species": self.species,
            "prediction_eV": self.prediction,
            "subgraph_prediction_eV": self.subgraph_prediction,
            "subgraph": {
                "nodes": sub.n_nodes,
                "edges": sub.n_edges,
                "edges_per_layer": sub.n_edges_per_layer,
            },
            "top_k": self.top_k,
            "fidelity": self.fidelity,
            "loss": self.loss,
            "importance": {
                "mean": float(self.importance.mean()) if sub.n_edges else float("nan"),
                "top_k_mean": float(self.importance[self.order[: self.top_k]].mean())
                if sub.n_edges
                else float("nan"),
                "fraction_above_0.5": float((self.importance > 0.5).mean())
                if sub.n_edges
                else float("nan"),
            },
            "top_k_mean_distance_A": float(self.distance[self.order[: self.top_k]].mean())
            if sub.n_edges
            else float("nan"),
            "time_s": self.time_s,
            "cpu_time_s": self.cpu_time_s,
        }


class Explainer:
    """Explains per-atom predictions of one model on one structure.

    ``module`` is anything called as ``module(species, edge_index, edge_vec,
    edge_weight)`` (an exported model, an eager model, or a test module), and is
    run layer by layer when it has ``embed``/``interact``/``readout``.
    """

    def __init__(
        self,
        module: Any,
        atoms: Any,
        *,
        r_max: float,
        n_layers: int,
        type_names: Sequence[str],
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
        config: ExplainConfig | None = None,
    ) -> None:
        self.module = module
        self.n_layers = int(n_layers)
        if self.n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.dtype = dtype
        self.device = torch.device(device)
        self.config = config or ExplainConfig()
        self.atoms = atoms
        start = time.perf_counter()
        self.graph = build_explain_graph(atoms, r_max, type_names)
        if self.graph.n_edges == 0:
            raise ValueError(
                f"the structure has no pair of atoms closer than r_max = {r_max} Å: "
                "no edges, nothing to explain"
            )
        std = getattr(module, "label_std", None)
        self.label_std = float(std) if isinstance(std, Tensor) and float(std) > 0 else 1.0
        species = torch.from_numpy(self.graph.species).to(self.device)
        edge_index = torch.from_numpy(np.stack([self.graph.sender, self.graph.receiver]))
        edge_vec = torch.from_numpy(self.graph.vec).to(device=self.device, dtype=dtype)
        with torch.no_grad():
            try:
                out = module(species, edge_index.to(self.device), edge_vec, None)
            except (RuntimeError, TypeError) as exc:
                if "argument" not in str(exc):
                    raise
                raise ValueError(
                    "the model does not take per-edge weights (forward(species, edge_index, "
                    "edge_vec, edge_weight)); re-export it with this version of symgnn "
                    f"(`symgnn export`): {str(exc).splitlines()[0]}"
                ) from None
        self.full_prediction = out.detach().to("cpu", torch.float64).numpy()
        self.setup_time_s = time.perf_counter() - start
        logger.info(
            "explainer: %d atoms, %d edges, full prediction in %.2f s",
            self.graph.n_atoms,
            self.graph.n_edges,
            self.setup_time_s,
        )

    @classmethod
    def from_model(
        cls,
        model: Any,
        atoms: Any,
        config: ExplainConfig | None = None,
        device: str | torch.device = "cpu",
    ) -> Explainer:
        """From a :class:`~symgnn_ase.export.LoadedModel`, a model path/name, or None (default)."""
        from ..export import LoadedModel, load_model

        loaded = model if isinstance(model, LoadedModel) else load_model(model, device=device)
        if loaded.node_inputs is not None:
            raise ValueError(
                f"{loaded.path.name} takes per-atom inputs {list(loaded.node_inputs.names)} from "
                "the potential (metadata node_inputs); explain does not compute them yet"
            )
        return cls(
            loaded.module,
            atoms,
            r_max=loaded.r_max,
            n_layers=loaded.n_layers,
            type_names=loaded.type_names,
            dtype=loaded.dtype,
            device=device,
            config=config,
        )

    def explain(self, atom: int, config: ExplainConfig | None = None) -> Explanation:
        """Learn the edge mask of ``atom`` and measure the explanation's fidelity."""
        cfg = config or self.config
        atom = _check_atom(atom, self.graph.n_atoms)
        start = time.perf_counter()
        cpu_start = time.process_time()
        sub = extract_subgraph(self.graph, atom, self.n_layers)
        e = sub.n_edges
        full_pred = float(self.full_prediction[atom])
        runner: _Runner | None = None
        sub_pred = full_pred  # an atom without edges: nothing to run or to explain
        if e:
            runner = _Runner(self.module, self.n_layers, sub, self.graph, self.dtype, self.device)
            with torch.no_grad():
                target = runner(None).detach()
            sub_pred = float(target)
        else:
            logger.warning("atom %d has no neighbors within r_max: nothing to explain", atom)
        if abs(sub_pred - full_pred) > LOCALITY_TOL * max(self.label_std, abs(full_pred)):
            raise RuntimeError(
                f"atom {atom}: the prediction on its {self.n_layers}-hop subgraph "
                f"({sub_pred:.6g}) differs from the full-structure prediction ({full_pred:.6g}); "
                "the model is not local within n_layers hops, so edge masks cannot explain it"
            )
        empty_pred = runner.hard(np.zeros(e, dtype=bool)) if runner is not None else sub_pred
        if cfg.scale == "empty":
            scale = max(abs(sub_pred - empty_pred), SCALE_FLOOR * self.label_std)
        else:
            scale = self.label_std if cfg.scale == "label_std" else 1.0
        gen = torch.Generator().manual_seed(int(cfg.seed) * 1_000_003 + atom)
        logits = cfg.init_logit + cfg.init_std * torch.randn(e, generator=gen, dtype=torch.float64)
        logits = logits.to(device=self.device, dtype=self.dtype).requires_grad_(True)
        history: list[float] = []
        err_history: list[float] = []
        if runner is not None:
            opt = torch.optim.Adam([logits], lr=cfg.lr)
            for _ in range(cfg.epochs):
                mask = torch.sigmoid(logits)
                pred = runner(mask)
                err = ((pred - target) / scale) ** 2
                ent = -(
                    mask * torch.log(mask + _EPS) + (1 - mask) * torch.log(1 - mask + _EPS)
                ).mean()
                loss = err + cfg.size_weight * mask.sum() + cfg.entropy_weight * ent
                opt.zero_grad(set_to_none=True)
                loss.backward(inputs=[logits])
                opt.step()
                history.append(float(loss.detach()))
                err_history.append(float(err.detach()))
        with torch.no_grad():
            mask = torch.sigmoid(logits)
            mask_pred = float(runner(mask)) if runner is not None else sub_pred
        importance = mask.detach().to("cpu", torch.float64).numpy()
        fidelity = self._fidelity(runner, sub, importance, full_pred, mask_pred, cfg)
        elapsed = time.perf_counter() - start
        vec = self.graph.vec[sub.edges]
        expl = Explanation(
            atom=atom,
            species=self.graph.type_names[int(self.graph.species[atom])],
            subgraph=sub,
            importance=importance,
            edge_length=np.linalg.norm(vec, axis=1),
            distance=np.linalg.norm(sub.midpoint, axis=1),
            prediction=full_pred,
            subgraph_prediction=sub_pred,
            fidelity=fidelity,
            loss={
                "first": history[0] if history else float("nan"),
                "last": history[-1] if history else float("nan"),
                "error_last": err_history[-1] if err_history else float("nan"),
                "scale_eV": scale,
            },
            time_s=elapsed,
            cpu_time_s=time.process_time() - cpu_start,
            top_k=min(cfg.top_k, e),
        )
        logger.info(
            "atom %d (%s): %d nodes, %d edges, prediction %.4f eV, keep-top-%d %.4f, "
            "remove-top-%d %.4f, %.2f s",
            atom,
            expl.species,
            sub.n_nodes,
            e,
            full_pred,
            expl.top_k,
            fidelity["keep_top_k_eV"],
            expl.top_k,
            fidelity["remove_top_k_eV"],
            elapsed,
        )
        return expl

    def _fidelity(
        self,
        runner: _Runner | None,
        sub: Subgraph,
        importance: np.ndarray,
        full_pred: float,
        mask_pred: float,
        cfg: ExplainConfig,
    ) -> dict[str, float]:
        """Hard-mask predictions: top-K kept (others weight 0) and top-K removed, with the
        K nearest edges and random K-edge sets as baselines."""
        e = sub.n_edges
        k = min(cfg.top_k, e)
        if runner is None or e == 0:
            nan = float("nan")
            return {
                "soft_mask_eV": mask_pred,
                "keep_top_k_eV": full_pred,
                "remove_top_k_eV": full_pred,
                "empty_eV": full_pred,
                "keep_error_eV": 0.0,
                "remove_change_eV": 0.0,
                "keep_nearest_error_eV": nan,
                "remove_nearest_change_eV": nan,
                "keep_random_error_eV": nan,
                "remove_random_change_eV": nan,
            }
        top = np.zeros(e, dtype=bool)
        top[np.argsort(-importance, kind="stable")[:k]] = True
        near = np.zeros(e, dtype=bool)
        near[np.argsort(np.linalg.norm(sub.midpoint, axis=1), kind="stable")[:k]] = True
        keep = runner.hard(top)
        remove = runner.hard(~top)
        keep_near = runner.hard(near)
        remove_near = runner.hard(~near)
        rng = np.random.default_rng(int(cfg.seed) + 7919 * sub.atom)
        keep_rand, remove_rand = [], []
        for _ in range(N_RANDOM_BASELINE):
            sel = np.zeros(e, dtype=bool)
            sel[rng.choice(e, size=k, replace=False)] = True
            keep_rand.append(abs(runner.hard(sel) - full_pred))
            remove_rand.append(abs(runner.hard(~sel) - full_pred))
        return {
            "soft_mask_eV": mask_pred,
            "keep_top_k_eV": keep,
            "remove_top_k_eV": remove,
            "empty_eV": runner.hard(np.zeros(e, dtype=bool)),
            # |f(top-K only) - f(all)|: small when the top-K edges suffice
            "keep_error_eV": abs(keep - full_pred),
            # |f(all but top-K) - f(all)|: large when the top-K edges are necessary
            "remove_change_eV": abs(remove - full_pred),
            "keep_nearest_error_eV": abs(keep_near - full_pred),
            "remove_nearest_change_eV": abs(remove_near - full_pred),
            "keep_random_error_eV": float(np.mean(keep_rand)),
            "remove_random_change_eV": float(np.mean(remove_rand)),
        }
