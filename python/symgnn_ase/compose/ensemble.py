"""An ensemble: K trained models in one file, the mean barrier and its per-atom standard
deviation (``symgnn ensemble MODEL1 MODEL2 ... -o ens.pt``).

The members (:func:`~.load.load_member`: exported files, bundled names, run folders or
checkpoints) must share the cutoff and the species (in the same order); float32 networks may
sit beside a float64 ridge (the file is then float64, the networks computing in float32 behind
:class:`~.stack.InFloat64`, bit for bit as alone). The file is
an ordinary symgnn model (``forward`` returns the mean, so every reader of the contract reads
it) with the metadata ``ensemble_size`` and the methods ``forward_std``, ``forward_members``,
``readout_std`` and ``readout_members`` (``docs/contracts.md``). :class:`Ensemble` lays its
members out as :class:`~.stack.Stack` does; ``std_scale`` (a buffer, 1 unless the ensemble was
calibrated; ``training/studies/calibrate_ensemble.py`` measures it) multiplies the spread so that it
reads as an error bar in eV.

Members may take per-atom inputs from the potential (metadata ``node_inputs``): those that do
must agree on the inputs' names, potential and pair style, and the file declares them (the
first such member's stats). Its module is then an :class:`EnsembleInputs`: ``embed`` takes the
inputs as 4th argument and hands them to the members that take them (the others sit in an
:class:`IgnoreInputs`), ``forward``/``forward_std``/``forward_members`` take them as 5th
argument (after ``edge_weight``) and require them; ``interact`` and the readouts are those of
every ensemble. An ensemble of members without inputs is an :class:`Ensemble`, as before.
"""

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..export import model_dtype
from ..format import ENSEMBLE_SIZE_KEY, NODE_INPUTS_KEY
from ..nn.base import OptTensor, TakesNodeInputs, require_node_inputs
from ..outputs import check_output
from .load import (
    Member,
    check_layerwise,
    check_mixed_dtype,
    check_shared,
    load_member,
    same_files,
    shared_node_inputs,
)
from .record import export_stack
from .spread import MeanAndSpread, check_std_scale
from .stack import InFloat64, Stack, edge_width

logger = logging.getLogger(__name__)

__all__ = ["Ensemble", "EnsembleInputs", "IgnoreInputs", "build_ensemble", "export_ensemble"]


class Ensemble(MeanAndSpread, Stack):
    """K models as one: the mean barrier and its per-atom spread."""

    def __init__(self, *stack: Any, std_scale: float = 1.0) -> None:
        """:class:`~.stack.Stack`'s arguments (members, their layer counts, node and edge
        widths), and the factor on the spread."""
        check_std_scale(std_scale)
        super().__init__(*stack)
        self.ensemble_size = len(self.members)
        dtype = model_dtype(self.members)
        self.register_buffer("std_scale", torch.tensor(float(std_scale), dtype=dtype))


class IgnoreInputs(nn.Module):
    """A member without node inputs in an :class:`EnsembleInputs`: its contract methods with
    ``embed``'s 4th and ``forward``'s 5th argument (the node inputs) taken and ignored, so that
    the ensemble calls every member alike (TorchScript compiles a call for each member)."""

    def __init__(self, member: nn.Module) -> None:
        super().__init__()
        self.member = member

    @torch.jit.export
    def embed(
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, node_inputs: Tensor
    ) -> tuple[Tensor, Tensor]:
        return self.member.embed(species, edge_index, edge_vec)

    @torch.jit.export
    def interact(
        self, layer: int, h: Tensor, e: Tensor, edge_index: Tensor, edge_weight: OptTensor = None
    ) -> tuple[Tensor, Tensor]:
        return self.member.interact(layer, h, e, edge_index, edge_weight)

    @torch.jit.export
    def readout(self, h: Tensor) -> Tensor:
        return self.member.readout(h)

    def forward(
        self,
        species: Tensor,
        edge_index: Tensor,
        edge_vec: Tensor,
        edge_weight: OptTensor = None,
        node_inputs: OptTensor = None,
    ) -> Tensor:
        return self.member(species, edge_index, edge_vec, edge_weight)


class EnsembleInputs(TakesNodeInputs, Ensemble):
    """An :class:`Ensemble` some of whose members take per-atom node inputs (``n_inputs``
    columns): ``embed`` takes them as 4th argument, ``forward``, ``forward_std`` and
    ``forward_members`` as 5th (required). ``takes_inputs``: per member, whether it does (the
    others are wrapped in :class:`IgnoreInputs`)."""

    def __init__(self, *stack: Any, takes_inputs: list[bool], n_inputs: int, **kw: Any) -> None:
        members, *rest = stack
        if len(takes_inputs) != len(members) or not any(takes_inputs) or n_inputs < 1:
            raise ValueError("EnsembleInputs: one flag per member, at least one taking inputs")
        wrapped = [m if t else IgnoreInputs(m) for m, t in zip(members, takes_inputs, strict=True)]
        super().__init__(wrapped, *rest, **kw)
        self.kind = "ensemble"  # the contract's kind, as for an ensemble without inputs
        self.n_inputs = int(n_inputs)

    @torch.jit.export
    def embed(  # type: ignore[override]
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, node_inputs: Tensor
    ) -> tuple[Tensor, Tensor]:
        hs: list[Tensor] = []
        es: list[Tensor] = []
        for member in self.members:
            h, e = member.embed(species, edge_index, edge_vec, node_inputs)
            hs.append(h)
            es.append(e)
        return torch.cat(hs, 1), torch.cat(es, 1)

    @torch.jit.export
    def forward_members(  # type: ignore[override]
        self,
        species: Tensor,
        edge_index: Tensor,
        edge_vec: Tensor,
        edge_weight: OptTensor = None,
        node_inputs: OptTensor = None,
    ) -> Tensor:
        x = require_node_inputs(node_inputs)
        outs: list[Tensor] = []
        for member in self.members:  # member by member, as Stack.forward_members
            outs.append(member(species, edge_index, edge_vec, edge_weight, x))
        return torch.stack(outs, 0)

    @torch.jit.export
    def forward_std(  # type: ignore[override]
        self,
        species: Tensor,
        edge_index: Tensor,
        edge_vec: Tensor,
        edge_weight: OptTensor = None,
        node_inputs: OptTensor = None,
    ) -> Tensor:
        y = self.forward_members(species, edge_index, edge_vec, edge_weight, node_inputs)
        return self._mean_std(y)


def _warn_duplicates(members: list[Member]) -> None:
    """A warning when two members are the same file (their spread is 0, and the mean weighs
    that model twice)."""
    for earlier, m, digest in same_files(members):
        logger.warning(
            "ensemble members %s and %s are the same model (sha256 %s): their spread is 0 "
            "and the mean counts it twice",
            earlier,
            m.source,
            digest[:12],
        )


def build_ensemble(
    sources: list[str | os.PathLike], std_scale: float = 1.0
) -> tuple[Ensemble, list[Member]]:
    """(the :class:`Ensemble` module, its members): an :class:`EnsembleInputs` when a member
    takes node inputs. The members must share r_max, type_names and dtype, and those with
    node inputs the inputs (:func:`~.load.shared_node_inputs`); anything else is a ValueError
    naming the member."""
    if len(sources) < 2:
        raise ValueError(f"an ensemble needs at least 2 models, got {len(sources)}")
    members = [load_member(s, inputs_ok=True) for s in sources]
    check_shared(members, "ensemble", mixed_dtype=True)
    check_mixed_dtype(members, "ensemble")
    spec = shared_node_inputs(members, "ensemble")
    check_layerwise(members, "ensemble")
    _warn_duplicates(members)
    # float32 networks beside a float64 ridge run behind InFloat64: the file is float64
    wide = model_dtype(*[m.module for m in members])
    stack = (
        [m.module if m.dtype == wide else InFloat64(m.module) for m in members],
        [m.n_layers for m in members],
        [m.feature_dim for m in members],
        [edge_width(m.module, m.dtype) for m in members],
    )
    if spec is None:
        module = Ensemble(*stack, std_scale=std_scale)
    else:
        takes = [m.node_inputs is not None for m in members]
        module = EnsembleInputs(
            *stack, takes_inputs=takes, n_inputs=spec.n_inputs, std_scale=std_scale
        )
    return module.eval(), members


def export_ensemble(
    sources: list[str | os.PathLike], output: str | os.PathLike, std_scale: float = 1.0
) -> Path:
    """Write the ensemble of ``sources`` to ``output`` (TorchScript, with metadata)."""
    check_output(output, [str(s) for s in sources], what="ensemble output")
    module, members = build_ensemble(sources, std_scale=std_scale)
    info = {
        "ensemble_size": len(members),
        "std": "sample standard deviation over the members (K - 1), times std_scale",
        "std_scale": float(std_scale),
    }
    metadata = {ENSEMBLE_SIZE_KEY: str(len(members))}
    spec = shared_node_inputs(members, "ensemble")
    if spec is not None:  # the inputs the members with them take (the first one's stats)
        metadata[NODE_INPUTS_KEY] = spec.to_json()
    path = export_stack(module, members, output, info, metadata=metadata)
    logger.info("exported an ensemble of %d models to %s", len(members), path)
    return path
