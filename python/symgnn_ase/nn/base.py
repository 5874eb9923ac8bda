"""What every model kind shares: the exported-model contract (docs/contracts.md).

:class:`BarrierModel` holds the contract's attributes (``kind``, ``n_layers``,
``feature_dim``), the label scale that de-standardizes the decoder output to eV, and the
contract's methods in their common form:

- ``interact(layer, ...)`` runs block ``layer`` of ``self.layers``, a ``ModuleList`` whose
  blocks map ``(h, e, edge_index, edge_weight)`` to ``(h, e)``;
- ``readout(h)`` is ``self.decoder(h)`` in eV;
- ``forward`` is the composition ``embed``, ``interact(0)`` … ``interact(n_layers - 1)``,
  ``readout``.

A kind defines ``embed`` (``@torch.jit.export``) and overrides whichever of the others its
state layout needs. TorchScript compiles the methods a subclass inherits, ``@torch.jit.export``
included, against the subclass: ``self.embed`` in the inherited ``forward`` is the kind's own.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor, nn

__all__ = [
    "BarrierModel",
    "OptTensor",
    "TakesNodeInputs",
    "add_input_scale",
    "add_label_scale",
    "check_node_inputs",
    "set_input_scale",
]

# the optional per-edge weight of the contract's methods (TorchScript reads the alias)
OptTensor = Optional[Tensor]


def add_label_scale(module: nn.Module) -> None:
    """Buffers that de-standardize the decoder output to eV (set from the training labels)."""
    module.register_buffer("label_mean", torch.zeros(()))
    module.register_buffer("label_std", torch.ones(()))


class BarrierModel(nn.Module):
    """Base of the model kinds: contract attributes and the shared method bodies.

    Subclasses call :func:`add_label_scale` themselves, after their parameters, so that the
    order of the state dict stays that of the files already written.
    """

    def __init__(self, kind: str, n_layers: int, feature_dim: int) -> None:
        super().__init__()
        self.kind = kind
        self.n_layers = n_layers
        self.feature_dim = feature_dim

    @torch.jit.export
    def interact(
        self, layer: int, h: Tensor, e: Tensor, edge_index: Tensor, edge_weight: OptTensor = None
    ) -> tuple[Tensor, Tensor]:
        for i, mod in enumerate(self.layers):
            if i == layer:
                return mod(h, e, edge_index, edge_weight)
        raise IndexError("layer out of range")

    @torch.jit.export
    def readout(self, h: Tensor) -> Tensor:
        return self._decode(h)

    def _decode(self, x: Tensor) -> Tensor:
        """The decoder on per-atom features ``x``, in eV."""
        return self.decoder(x).squeeze(-1) * self.label_std + self.label_mean

    def forward(
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_weight: OptTensor = None
    ) -> Tensor:
        h, e = self.embed(species, edge_index, edge_vec)
        for layer in range(self.n_layers):
            h, e = self.interact(layer, h, e, edge_index, edge_weight)
        return self.readout(h)


def add_input_scale(module: nn.Module, n_inputs: int, dtype: torch.dtype) -> None:
    """Buffers ``input_mean`` and ``input_std`` that standardize the node inputs (set from the
    training atoms: :func:`set_input_scale`)."""
    module.register_buffer("input_mean", torch.zeros(n_inputs, dtype=dtype))
    module.register_buffer("input_std", torch.ones(n_inputs, dtype=dtype))


def set_input_scale(module: nn.Module, mean: Any, std: Any) -> None:
    """Set ``module``'s :func:`add_input_scale` buffers: the inputs' mean and std over the
    training atoms (arrays or tensors, cast to the buffers' dtype)."""
    with torch.no_grad():
        module.input_mean.copy_(torch.as_tensor(mean))
        module.input_std.copy_(torch.as_tensor(std))


def check_node_inputs(node_inputs: Tensor, species: Tensor, n_inputs: int) -> None:
    """A ValueError unless ``node_inputs`` is ``[n_atoms, n_inputs]``."""
    if (
        node_inputs.dim() != 2
        or node_inputs.shape[0] != species.shape[0]
        or node_inputs.shape[1] != n_inputs
    ):
        raise ValueError("node_inputs must be [n_atoms, n_inputs] (metadata node_inputs)")


def require_node_inputs(node_inputs: OptTensor) -> Tensor:
    """``node_inputs``; None is a ValueError saying how to call a model that needs them."""
    if node_inputs is None:
        raise ValueError(
            "this model takes per-atom node inputs (metadata node_inputs): "
            "forward(species, edge_index, edge_vec, edge_weight, node_inputs)"
        )
    return node_inputs


class TakesNodeInputs:
    """The ``forward`` of a model whose ``embed`` takes per-atom node inputs from the potential
    as its 4th argument (metadata ``node_inputs``): ``forward(species, edge_index, edge_vec,
    edge_weight=None, node_inputs=None)`` requires them, then runs ``embed``, the layers and
    ``readout``. Listed before the model base (whose ``forward`` it replaces):
    ``nn/descriptor.py``'s and ``nn/inputs.py``'s kinds with inputs, and an ensemble whose
    members take them (``compose/ensemble.py``)."""

    def forward(
        self,
        species: Tensor,
        edge_index: Tensor,
        edge_vec: Tensor,
        edge_weight: OptTensor = None,
        node_inputs: OptTensor = None,
    ) -> Tensor:
        h, e = self.embed(species, edge_index, edge_vec, require_node_inputs(node_inputs))
        for layer in range(self.n_layers):
            h, e = self.interact(layer, h, e, edge_index, edge_weight)
        return self.readout(h)
