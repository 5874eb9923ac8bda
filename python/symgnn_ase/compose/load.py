"""The one loader of what a composition is made of, and the checks its members share.

A member is an exported model file or bundled name, a run folder (its ``best.pt``) or a
training checkpoint (:func:`load_member`); :func:`model_from_checkpoint` is the eager model of
a run, which ``symgnn export`` (``train/export.py``) uses too. This module imports nothing of
``train/`` at import time, so ``train/export.py`` can import the composition (a run trained
with ``data.baseline`` is exported as a residual model) without an import circle.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data.io import file_sha256
from ..export import load_model, script_error_line
from ..nn.config import ModelConfig
from ..nn.factory import build_model
from ..potential.inputs import NodeInputSpec

logger = logging.getLogger(__name__)

__all__ = [
    "Member",
    "check_layerwise",
    "check_shared",
    "layer_widths",
    "load_member",
    "model_from_checkpoint",
    "probe_graph",
    "refuse_node_inputs",
    "same_files",
    "shared_node_inputs",
]


@dataclass
class Member:
    """One model of a composition, with the facts the composition checks and records."""

    module: torch.nn.Module
    source: str
    r_max: float
    type_names: list[str]
    dtype: torch.dtype
    n_layers: int
    feature_dim: int
    info: dict[str, Any]
    file: Path | None  # the file read (for its hash)
    #: a run trained with ``data.baseline``: that baseline as configured, and the sha256 of the
    #: file it subtracted (None: the run learned the labels, or an exported file)
    baseline: str | None = None
    baseline_sha256: str | None = None
    from_checkpoint: bool = False  # a run folder or training checkpoint (not an exported file)
    #: the per-atom inputs from the potential the model takes (metadata ``node_inputs``)
    node_inputs: NodeInputSpec | None = None


def model_from_checkpoint(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The eager model of a run folder (its best.pt) or of a checkpoint file."""
    # train/__init__ imports train/export, which imports this package: imported when used
    from ..train.checkpoints import load_checkpoint

    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    ckpt = load_checkpoint(path)
    if "model" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{path} is not a symgnn training checkpoint (no model/config entries)")
    model = build_model(ModelConfig.from_dict(ckpt["config"]["model"]))
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt


def is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (an exported model, not a checkpoint)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any("/code/" in name for name in zf.namelist())


def _score(metrics: dict[str, Any]) -> float | None:
    """The selection score of a checkpoint's validation metrics (older runs: pooled Pearson)."""
    if "score" in metrics:
        return metrics["score"]
    return (metrics.get("pooled") or {}).get("pearson")


def load_member(
    source: str | os.PathLike, residual_ok: bool = False, inputs_ok: bool = False
) -> Member:
    """An exported model file or bundled name, a run folder (``best.pt``) or a checkpoint.

    A run trained with ``data.baseline`` predicts only what its baseline leaves: it is refused
    unless ``residual_ok`` (the networks of a residual model). A model with per-atom inputs
    from the potential (``node_inputs``) is refused unless ``inputs_ok`` (an ensemble)."""
    text = str(source)
    path = Path(text)
    if path.is_dir() or (path.is_file() and not is_torchscript(path)):
        from ..train.datasets import run_baseline  # see model_from_checkpoint

        model, ckpt = model_from_checkpoint(path)
        baseline = run_baseline(ckpt["config"])
        if baseline and not residual_ok:
            raise ValueError(
                f"{text} was trained on the labels less the predictions of data.baseline "
                f"{baseline!r}: alone it predicts only that remainder; use `symgnn export "
                f"{text}` (the baseline and the network in one file) or `symgnn residual "
                f"BASE {text}`"
            )
        mcfg = ckpt["config"]["model"]
        spec = ckpt.get("node_inputs")  # the file's metadata, as `symgnn export` writes it
        spec = NodeInputSpec.from_json(spec, source=text) if spec else None
        if not inputs_ok:
            refuse_node_inputs(text, mcfg.get("node_inputs"))
        elif mcfg.get("node_inputs") and spec is None:
            raise ValueError(
                f"{text} takes per-atom inputs {mcfg['node_inputs']} but its checkpoint does "
                "not record their potential and stats (node_inputs): retrain it, or export it"
            )
        info = {
            "kind": mcfg["kind"],
            "model": mcfg,
            "seed": ckpt["config"].get("seed"),
            "epoch": ckpt.get("epoch"),
            "validation_pearson": _score(ckpt.get("metrics") or {}),
        }
        return Member(
            module=model.eval(),
            source=text,
            r_max=float(mcfg["r_max"]),
            type_names=list(mcfg["type_names"]),
            dtype=next(model.parameters()).dtype,
            n_layers=int(model.n_layers),
            feature_dim=int(model.feature_dim),
            info=info,
            file=path / "best.pt" if path.is_dir() else path,
            baseline=baseline,
            baseline_sha256=(ckpt.get("data_sha256") or {}).get("data.baseline"),
            from_checkpoint=True,
            node_inputs=spec,
        )
    loaded = load_model(text)
    if loaded.ensemble_size > 1:
        raise ValueError(
            f"{loaded.path} is itself an ensemble ({loaded.ensemble_size} members): give its "
            "members instead"
        )
    if not inputs_ok:
        refuse_node_inputs(text, loaded.node_inputs and list(loaded.node_inputs.names))
    return Member(
        module=loaded.module,
        source=text,
        r_max=loaded.r_max,
        type_names=list(loaded.type_names),
        dtype=loaded.dtype,
        n_layers=loaded.n_layers,
        feature_dim=loaded.feature_dim,
        info=dict(loaded.info),
        file=loaded.path,
        node_inputs=loaded.node_inputs,
    )


def refuse_node_inputs(source: str, names: list[str] | None, what: str = "") -> None:
    """Compositions other than an ensemble take the structure only: a model with per-atom
    inputs from the potential (``node_inputs``) is refused by name."""
    if names:
        role = what or "a member of a residual model"
        raise ValueError(
            f"{source} takes per-atom inputs {names} from the potential (metadata node_inputs): "
            f"it cannot be {role}; use it on its own or in an ensemble (`symgnn ensemble`)"
        )


def shared_node_inputs(members: list[Member], what: str) -> NodeInputSpec | None:
    """The per-atom inputs of the members that take them (None: none does), which must agree
    on names, potential and pair style; else a ValueError naming both members and what
    differs. The stats are the first such member's."""
    first = None
    for m in members:
        if m.node_inputs is None:
            continue
        if first is None:
            first = m
            continue
        for key in ("names", "potential", "pair_style"):
            a, b = getattr(first.node_inputs, key), getattr(m.node_inputs, key)
            if a != b:
                a, b = (list(v) if isinstance(v, tuple) else v for v in (a, b))
                raise ValueError(
                    f"{what} members {first.source} and {m.source} take different per-atom "
                    f"inputs (metadata node_inputs): {key} {a!r} and {b!r}; members with "
                    "inputs must share names, potential and pair_style"
                )
    return None if first is None else first.node_inputs


def check_shared(members: list[Member], what: str, mixed_dtype: bool = False) -> None:
    """The members share r_max, type_names (in order) and dtype (``mixed_dtype``: float32
    members without node inputs may sit beside float64 ones, compose/stack.InFloat64); else a
    ValueError naming them."""
    first = members[0]
    for m in members[1:]:
        if m.r_max != first.r_max:
            raise ValueError(
                f"{what} members must share r_max: {first.source} has {first.r_max:g} Å, "
                f"{m.source} has {m.r_max:g} Å"
            )
        if m.type_names != first.type_names:
            raise ValueError(
                f"{what} members must share type_names (same order): {first.source} has "
                f"[{', '.join(first.type_names)}], {m.source} has [{', '.join(m.type_names)}]"
            )
        if mixed_dtype:
            continue
        if m.dtype != first.dtype:
            raise ValueError(
                f"{what} members must share the dtype: {first.source} is "
                f"{str(first.dtype).replace('torch.', '')}, {m.source} is "
                f"{str(m.dtype).replace('torch.', '')} (a ridge fits in either: model.dtype)"
            )


def check_mixed_dtype(members: list[Member], what: str) -> None:
    """Beside a float64 member, a float32 member must take no node inputs (it runs behind
    :class:`~.stack.InFloat64`)."""
    if not any(m.dtype == torch.float64 for m in members):
        return
    for m in members:
        if m.dtype != torch.float64 and m.node_inputs is not None:
            raise ValueError(
                f"{what} member {m.source} is float32 and takes per-atom inputs, beside a "
                "float64 member: fit it in float64 (model.dtype) or the others in float32"
            )


def probe_graph(
    module: torch.nn.Module, dtype: torch.dtype, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, ...]:
    """``module.embed``'s arguments on a two-atom graph: species, edge_index, edge_vec, and
    zero node inputs when the module takes them (``n_inputs``)."""
    species = torch.zeros(2, dtype=torch.int64, device=device)
    edge_index = torch.tensor([[0, 1], [1, 0]], dtype=torch.int64, device=device)
    edge_vec = torch.tensor([[2.5, 0.0, 0.0], [-2.5, 0.0, 0.0]], dtype=dtype, device=device)
    n_inputs = int(getattr(module, "n_inputs", 0) or 0)
    if not n_inputs:
        return species, edge_index, edge_vec
    inputs = torch.zeros(2, n_inputs, dtype=torch.float64, device=device)
    return species, edge_index, edge_vec, inputs


def _state_widths(module: torch.nn.Module, n_layers: int, dtype: torch.dtype) -> list[tuple]:
    """The widths (node state, edge state) of ``module`` after ``embed`` and after each of its
    ``n_layers`` layers, run on a two-atom graph."""
    args = probe_graph(module, dtype)
    edge_index = args[1]
    with torch.no_grad():
        h, e = module.embed(*args)
        widths = [(int(h.shape[1]), int(e.shape[1]))]
        for layer in range(n_layers):
            h, e = module.interact(layer, h, e, edge_index, None)
            widths.append((int(h.shape[1]), int(e.shape[1])))
    return widths


def layer_widths(
    module: torch.nn.Module, n_layers: int, dtype: torch.dtype, what: str
) -> list[tuple]:
    """:func:`_state_widths`, a failure of the layer-by-layer path (a broken or foreign
    file) a ValueError naming ``what``."""
    try:
        return _state_widths(module, n_layers, dtype)
    except RuntimeError as exc:
        raise ValueError(
            f"{what} fails when run layer by layer, as the LAMMPS compute runs it "
            f"({script_error_line(exc)}): it is a broken model file; rebuild it"
        ) from None


def check_layerwise(members: list[Member], what: str) -> None:
    """Every member keeps the widths of its node and edge states from layer to layer (the
    stack slices them by width); a member that does not is a ValueError naming it and the
    way round."""
    for m in members:
        widths = layer_widths(m.module, m.n_layers, m.dtype, f"{what} member {m.source}")
        if len(set(widths)) > 1:
            steps = " -> ".join(
                f"{h}/{e}" for k, (h, e) in enumerate(widths) if k == 0 or widths[k - 1] != (h, e)
            )
            raise ValueError(
                f"{what} member {m.source} (kind {m.info.get('kind', '?')}) changes the width "
                f"of its node/edge state from layer to layer ({steps}), so it cannot run layer "
                f"by layer inside a {what} (the LAMMPS compute would fail); build the {what} "
                "from bare models and put the smoothing around the result (`symgnn smooth`)"
            )


def same_files(members: list[Member]) -> Iterator[tuple[str, Member, str]]:
    """``(earlier, m, sha256)`` for every member ``m`` whose file has the same content as that
    of an earlier member (its source ``earlier``); members without a file are passed over."""
    seen: dict[str, str] = {}
    for m in members:
        if m.file is None or not m.file.is_file():
            continue
        digest = file_sha256(m.file)
        if digest in seen:
            yield seen[digest], m, digest
        else:
            seen[digest] = m.source
