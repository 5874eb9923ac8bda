"""A residual model: a baseline and the networks trained on what it leaves (``data.baseline``)
in one file whose barrier is their sum (``symgnn residual BASE NET ... -o res.pt``, and what
``symgnn export RUN`` writes for a run trained with ``data.baseline``).

:class:`Residual` lays its members out as :class:`~.stack.Stack` does and keeps the
single-model contract only: no spread, the members are not estimates of the same thing.
"""

import logging
import os
from pathlib import Path

import torch
from torch import Tensor

from ..data.io import file_sha256
from ..nn.base import OptTensor
from ..outputs import check_output
from .load import Member, check_layerwise, check_shared, load_member, same_files
from .record import export_stack
from .stack import Stack, edge_width

logger = logging.getLogger(__name__)

__all__ = ["Residual", "build_residual", "export_residual"]


class Residual(Stack):
    """A baseline model and models trained on what it leaves as one model: the barrier is the
    sum of the members' predictions."""

    @torch.jit.export
    def readout(self, h: Tensor) -> Tensor:
        return self.readout_members(h).sum(0)

    def forward(
        self, species: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_weight: OptTensor = None
    ) -> Tensor:
        return self.forward_members(species, edge_index, edge_vec, edge_weight).sum(0)


def _refuse_duplicates(members: list[Member]) -> None:
    """A residual's members are summed: the same file twice would add its part twice."""
    for earlier, m, digest in same_files(members):
        raise ValueError(
            f"residual members {earlier} and {m.source} are the same model (sha256 "
            f"{digest[:12]}): their predictions are summed, so its part would count twice"
        )


def _check_baseline(base: Member, nets: list[Member], any_baseline: bool) -> None:
    """Every net was trained with ``data.baseline``, on the remainder of the file ``base`` is
    (its recorded sha256; ``any_baseline`` waives that second check)."""
    base_sha = file_sha256(base.file) if base.file is not None and base.file.is_file() else None
    for m in nets:
        if not m.from_checkpoint:
            raise ValueError(
                f"residual network {m.source} is an exported model file, which does not record "
                "a training baseline: give the run folder (or checkpoint) of a network trained "
                f"with data.baseline; added to BASE {base.source} a whole-barrier model would "
                "count every barrier twice"
            )
        if m.baseline is None:
            raise ValueError(
                f"residual network {m.source} was not trained with data.baseline: it predicts "
                f"whole barriers, and added to BASE {base.source} every barrier would count "
                "twice; give a run trained with `data.baseline` (or use `symgnn ensemble` to "
                "average whole-barrier models)"
            )
        if any_baseline:
            continue
        if m.baseline_sha256 is None or m.baseline_sha256 != base_sha:
            theirs = (m.baseline_sha256 or "not recorded")[:12]
            raise ValueError(
                f"residual network {m.source} was trained on the remainder of data.baseline "
                f"{m.baseline!r} (sha256 {theirs}), but BASE {base.source} is another file "
                f"(sha256 {(base_sha or '?')[:12]}): give that baseline as BASE, or pass "
                "--any-baseline if pairing the network with another model is what you want"
            )


def build_residual(
    base: str | os.PathLike, nets: list[str | os.PathLike], any_baseline: bool = False
) -> tuple[Residual, list[Member]]:
    """(the :class:`Residual` module, its members): ``base`` and the networks ``nets`` trained
    on what it leaves, summed. The members must share r_max, type_names and dtype; every net
    must be a run trained with ``data.baseline`` whose recorded baseline file is ``base``
    (same sha256; ``any_baseline`` waives the latter)."""
    if not nets:
        raise ValueError("a residual model needs a baseline and at least 1 network, got none")
    members = [load_member(base)] + [load_member(n, residual_ok=True) for n in nets]
    _check_baseline(members[0], members[1:], any_baseline)
    _refuse_duplicates(members)
    check_shared(members, "residual")
    check_layerwise(members, "residual")
    module = Residual(
        [m.module for m in members],
        [m.n_layers for m in members],
        [m.feature_dim for m in members],
        [edge_width(m.module, m.dtype) for m in members],
    )
    return module.eval(), members


def export_residual(
    base: str | os.PathLike,
    nets: list[str | os.PathLike],
    output: str | os.PathLike,
    any_baseline: bool = False,
) -> Path:
    """Write ``base`` + ``nets`` (their predictions summed) to ``output`` (TorchScript); see
    :func:`build_residual` for the checks."""
    check_output(output, [str(base)] + [str(n) for n in nets], what="residual output")
    module, members = build_residual(base, nets, any_baseline)
    info = {"combine": "sum of the members' predictions (the first is the baseline)"}
    path = export_stack(module, members, output, info)
    logger.info("exported a baseline and %d network(s) to %s", len(nets), path)
    return path
