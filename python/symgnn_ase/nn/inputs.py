"""SymGNN kinds with per-atom inputs from the simulation's potential (``model.node_inputs``,
issue 27).

The node inputs (float64 ``[N, n_inputs]``: e.g. each atom's potential energy, on the copy the
relax protocol moved, :mod:`symgnn_ase.potential.inputs`) are standardized by one mean and std
per input over the training atoms (buffers ``input_mean``, ``input_std``), multiplied by the
species indicator (one column per species and input: the energy scale differs between Cu and
Zr) and added to the species embedding through ``input_proj``, a linear map whose weights start
at zero: a network started from a model without inputs (``init``) predicts exactly what that
model did until training moves them. The layers then see the inputs of every neighbour through
their messages. Everything after ``embed`` is the network's own.

``embed(species, edge_index, edge_vec, node_inputs)`` takes the inputs as its 4th argument
(the plugin passes them exactly when the file's metadata declares ``node_inputs``, docs/
contracts.md); ``forward(species, edge_index, edge_vec, edge_weight=None, node_inputs=None)``
requires them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import TakesNodeInputs, add_input_scale, check_node_inputs
from .config import ModelConfig
from .symgnn import SymGNN

__all__ = ["SymGNNInputs", "INPUT_STATE_KEYS"]

#: the state entries a model without inputs lacks (``init`` fills them with the fresh model's)
INPUT_STATE_KEYS = ("input_proj.weight", "input_mean", "input_std")


class SymGNNInputs(TakesNodeInputs, SymGNN):
    """A SymGNN kind (``symgnn``, ``raw``, ``length``) whose embedding adds the node inputs."""

    def __init__(self, cfg: ModelConfig) -> None:
        if not cfg.node_inputs:
            raise ValueError("SymGNNInputs needs model.node_inputs")
        super().__init__(cfg)
        self.n_inputs = len(cfg.node_inputs)
        self.n_species = len(cfg.type_names)
        self.input_proj = nn.Linear(self.n_species * self.n_inputs, cfg.node_dim, bias=False)
        nn.init.zeros_(self.input_proj.weight)
        add_input_scale(self, self.n_inputs, torch.float64)

    @torch.jit.export
    def embed(  # type: ignore[override]
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, node_inputs: Tensor
    ) -> tuple[Tensor, Tensor]:
        """h = embedding(species) + input_proj(standardized inputs x species indicator)."""
        check_node_inputs(node_inputs, species, self.n_inputs)
        h, e = self._embed(species, edge_vec)
        x = (node_inputs.to(torch.float64) - self.input_mean) / self.input_std
        onehot = torch.nn.functional.one_hot(species, self.n_species).to(torch.float64)
        cols = (onehot.unsqueeze(2) * x.unsqueeze(1)).reshape(species.shape[0], -1)
        return h + self.input_proj(cols.to(h.dtype)), e
