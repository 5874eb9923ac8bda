"""An ensemble: K trained models in one file, the mean barrier and its per-atom standard
deviation (``symgnn ensemble MODEL1 MODEL2 ... -o ens.pt``).

The members (:func:`~.load.load_member`: exported files, bundled names, run folders or
checkpoints) must share the cutoff, the species (in the same order) and the dtype. The file is
an ordinary symgnn model (``forward`` returns the mean, so every reader of the contract reads
it) with the metadata ``ensemble_size`` and the methods ``forward_std``, ``forward_members``,
``readout_std`` and ``readout_members`` (``docs/contracts.md``). :class:`Ensemble` lays its
members out as :class:`~.stack.Stack` does; ``std_scale`` (a buffer, 1 unless the ensemble was
calibrated; ``training/studies/calibrate_ensemble.py`` measures it) multiplies the spread so that it
reads as an error bar in eV.
"""

import logging
import os
from pathlib import Path
from typing import Any

import torch

from ..format import ENSEMBLE_SIZE_KEY
from ..outputs import check_output
from .load import Member, check_layerwise, check_shared, load_member, same_files
from .record import export_stack
from .spread import MeanAndSpread, check_std_scale
from .stack import Stack, edge_width

logger = logging.getLogger(__name__)

__all__ = ["Ensemble", "build_ensemble", "export_ensemble"]


class Ensemble(MeanAndSpread, Stack):
    """K models as one: the mean barrier and its per-atom spread."""

    def __init__(self, *stack: Any, std_scale: float = 1.0) -> None:
        """:class:`~.stack.Stack`'s arguments (members, their layer counts, node and edge
        widths), and the factor on the spread."""
        check_std_scale(std_scale)
        super().__init__(*stack)
        self.ensemble_size = len(self.members)
        dtype = next(iter(self.members.parameters())).dtype
        self.register_buffer("std_scale", torch.tensor(float(std_scale), dtype=dtype))


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
    """(the :class:`Ensemble` module, its members). The members must share r_max, type_names
    and dtype; anything else is a ValueError naming the member."""
    if len(sources) < 2:
        raise ValueError(f"an ensemble needs at least 2 models, got {len(sources)}")
    members = [load_member(s) for s in sources]
    check_shared(members, "ensemble")
    check_layerwise(members, "ensemble")
    _warn_duplicates(members)
    module = Ensemble(
        [m.module for m in members],
        [m.n_layers for m in members],
        [m.feature_dim for m in members],
        [edge_width(m.module, m.dtype) for m in members],
        std_scale=std_scale,
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
    path = export_stack(
        module, members, output, info, metadata={ENSEMBLE_SIZE_KEY: str(len(members))}
    )
    logger.info("exported an ensemble of %d models to %s", len(members), path)
    return path
