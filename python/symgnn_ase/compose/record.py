"""Writing a composed model file with its provenance in ``info``: the members' records for
models side by side (:func:`export_stack`), the base's record for a model around one base
(:func:`export_wrapper`)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from torch import nn

from ..data.io import file_sha256
from ..export import LoadedModel, export_model
from ..format import ENSEMBLE_SIZE_KEY, RELAX_KEY
from ..potential.relax import RelaxProtocol
from .load import Member

__all__ = ["export_stack", "export_wrapper", "record_of"]


def record_of(source: str | os.PathLike, file: Path | None, info: dict[str, Any]) -> dict:
    """What a composed file records of one model it holds: its source's base name, its file's
    sha256 (None without a file) and its ``info`` without the date."""
    return {
        "source": os.path.basename(os.path.normpath(str(source))),
        "sha256": file_sha256(file) if file is not None and file.is_file() else None,
        "info": {k: v for k, v in info.items() if k != "date"},
    }


def export_stack(
    module: nn.Module,
    members: list[Member],
    output: str | os.PathLike,
    info: dict[str, Any],
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write a :class:`~.stack.Stack` with ``info`` plus its kind, its members' records and
    its parameter count."""
    info = {
        "kind": module.kind,
        **info,
        "members": [record_of(m.source, m.file, m.info) for m in members],
        "n_parameters": sum(p.numel() for p in module.parameters()),
    }
    return export_model(
        module,
        output,
        members[0].type_names,
        members[0].r_max,
        info=info,
        inputs=[m.file for m in members if m.file is not None],
        metadata=metadata,
    )


def export_wrapper(
    model: nn.Module,
    output: str | os.PathLike,
    base: str | os.PathLike,
    loaded: LoadedModel,
    info: dict[str, Any],
    ensemble_info: dict[str, Any] | None = None,
    inputs: Iterable[str | os.PathLike | None] = (),
) -> Path:
    """Write ``model``, a wrapper around the loaded ``base`` model (e.g. smoothed), with
    ``info`` (its kind and parameters) plus ``base`` (the base's record) and ``n_parameters``;
    an ensemble base adds ``ensemble_size``, then ``ensemble_info``, to the info and the
    ``ensemble_size`` metadata; a base with a relax protocol passes it on. ``inputs``: the
    other files read, never overwritten."""
    info = {
        **info,
        "base": record_of(base, loaded.path, loaded.info),
        "n_parameters": sum(p.numel() for p in model.parameters()),
    }
    metadata = {}
    if loaded.ensemble_size > 1:
        info["ensemble_size"] = loaded.ensemble_size
        info.update(ensemble_info or {})
        metadata[ENSEMBLE_SIZE_KEY] = str(loaded.ensemble_size)
    if loaded.relax != RelaxProtocol.off():  # the wrapped model predicts on relaxed positions
        metadata[RELAX_KEY] = loaded.relax.to_json()
    return export_model(
        model,
        output,
        loaded.type_names,
        loaded.r_max,
        info=info,
        inputs=[loaded.path, *inputs],
        metadata=metadata,
    )
