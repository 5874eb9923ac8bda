"""Ensembles: K trained models in one exported file, giving the mean barrier and its per-atom
standard deviation (``symgnn ensemble MODEL1 MODEL2 ... -o ens.pt``); and residual models: a
baseline and the networks trained on what it leaves (``data.baseline``) in one file whose
barrier is their sum (``symgnn residual BASE NET ... -o res.pt``).

The members are exported model files, bundled model names, run folders (their ``best.pt``) or
training checkpoints; they must share the cutoff, the species (in the same order) and the
dtype. The file is an ordinary symgnn model (``forward`` returns the mean, so every reader of
the contract reads it) with the metadata ``ensemble_size`` and the methods ``forward_std``,
``forward_members``, ``readout_std`` and ``readout_members`` (:mod:`symgnn_ase.nn.ensemble`,
``docs/contracts.md``).
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

from .format import ENSEMBLE_SIZE_KEY

logger = logging.getLogger(__name__)

__all__ = [
    "Member",
    "load_member",
    "build_ensemble",
    "build_residual",
    "export_ensemble",
    "export_residual",
    "layer_widths",
]


@dataclass
class Member:
    """One model of an ensemble, with the facts the ensemble checks and records."""

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


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any("/code/" in name for name in zf.namelist())


def _score(metrics: dict[str, Any]) -> float | None:
    """The selection score of a checkpoint's validation metrics (older runs: pooled Pearson)."""
    if "score" in metrics:
        return metrics["score"]
    return (metrics.get("pooled") or {}).get("pearson")


def load_member(source: str | os.PathLike, residual_ok: bool = False) -> Member:
    """An exported model file or bundled name, a run folder (``best.pt``) or a checkpoint.

    A run trained with ``data.baseline`` predicts only what its baseline leaves: it is refused
    unless ``residual_ok`` (the networks of :func:`build_residual`)."""
    text = str(source)
    path = Path(text)
    if path.is_dir() or (path.is_file() and not _is_torchscript(path)):
        from .train.datasets import run_baseline
        from .train.export import model_from_checkpoint

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
        _refuse_node_inputs(text, mcfg.get("node_inputs"))
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
        )
    from .export import load_model

    loaded = load_model(text)
    if loaded.ensemble_size > 1:
        raise ValueError(
            f"{loaded.path} is itself an ensemble ({loaded.ensemble_size} members): give its "
            "members instead"
        )
    _refuse_node_inputs(text, loaded.node_inputs and list(loaded.node_inputs.names))
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
    )


def _refuse_node_inputs(source: str, names: list[str] | None) -> None:
    """Members take the structure only: a model with per-atom inputs from the potential
    (``node_inputs``) is refused by name."""
    if names:
        raise ValueError(
            f"{source} takes per-atom inputs {names} from the potential (metadata node_inputs): "
            "it cannot be a member of an ensemble or residual model; use it on its own"
        )


def build_ensemble(sources: list[str | os.PathLike], std_scale: float = 1.0):
    """(the :class:`~symgnn_ase.nn.ensemble.Ensemble` module, its members). The members must
    share r_max, type_names and dtype; anything else is a ValueError naming the member."""
    from .nn.ensemble import Ensemble, edge_width

    if len(sources) < 2:
        raise ValueError(f"an ensemble needs at least 2 models, got {len(sources)}")
    members = [load_member(s) for s in sources]
    _check_shared(members, "ensemble")
    _check_layerwise(members, "ensemble")
    _warn_duplicates(members)
    edge_dims = [edge_width(m.module, m.dtype) for m in members]
    module = Ensemble(
        [m.module for m in members],
        [m.n_layers for m in members],
        [m.feature_dim for m in members],
        edge_dims,
        std_scale=std_scale,
    )
    return module.eval(), members


def _check_shared(members: list[Member], what: str) -> None:
    """The members share r_max, type_names (in order) and dtype; else a ValueError naming them."""
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
        if m.dtype != first.dtype:
            raise ValueError(
                f"{what} members must share the dtype: {first.source} is "
                f"{str(first.dtype).replace('torch.', '')}, {m.source} is "
                f"{str(m.dtype).replace('torch.', '')}"
            )


def _state_widths(module: torch.nn.Module, n_layers: int, dtype: torch.dtype) -> list[tuple]:
    """The widths (node state, edge state) of ``module`` after ``embed`` and after each of its
    ``n_layers`` layers, run on a two-atom graph."""
    species = torch.zeros(2, dtype=torch.int64)
    edge_index = torch.tensor([[0, 1], [1, 0]], dtype=torch.int64)
    edge_vec = torch.tensor([[2.5, 0.0, 0.0], [-2.5, 0.0, 0.0]], dtype=dtype)
    with torch.no_grad():
        h, e = module.embed(species, edge_index, edge_vec)
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
    from .export import script_error_line

    try:
        return _state_widths(module, n_layers, dtype)
    except RuntimeError as exc:
        raise ValueError(
            f"{what} fails when run layer by layer, as the LAMMPS compute runs it "
            f"({script_error_line(exc)}): it is a broken model file; rebuild it"
        ) from None


def _check_layerwise(members: list[Member], what: str) -> None:
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


def _same_files(members: list[Member]) -> Iterator[tuple[str, Member, str]]:
    """``(earlier, m, sha256)`` for every member ``m`` whose file has the same content as that
    of an earlier member (its source ``earlier``); members without a file are passed over."""
    from .data.io import file_sha256

    seen: dict[str, str] = {}
    for m in members:
        if m.file is None or not m.file.is_file():
            continue
        digest = file_sha256(m.file)
        if digest in seen:
            yield seen[digest], m, digest
        else:
            seen[digest] = m.source


def _warn_duplicates(members: list[Member]) -> None:
    """A warning when two members are the same file (their spread is 0, and the mean weighs
    that model twice)."""
    for earlier, m, digest in _same_files(members):
        logger.warning(
            "ensemble members %s and %s are the same model (sha256 %s): their spread is 0 "
            "and the mean counts it twice",
            earlier,
            m.source,
            digest[:12],
        )


def _refuse_duplicates(members: list[Member]) -> None:
    """A residual's members are summed: the same file twice would add its part twice."""
    for earlier, m, digest in _same_files(members):
        raise ValueError(
            f"residual members {earlier} and {m.source} are the same model (sha256 "
            f"{digest[:12]}): their predictions are summed, so its part would count twice"
        )


def _check_baseline(base: Member, nets: list[Member], any_baseline: bool) -> None:
    """Every net was trained with ``data.baseline``, on the remainder of the file ``base`` is
    (its recorded sha256; ``any_baseline`` waives that second check)."""
    from .data.io import file_sha256

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


def _members_info(members: list[Member]) -> list[dict[str, Any]]:
    from .data.io import file_sha256

    return [
        {
            "source": os.path.basename(os.path.normpath(m.source)),
            "sha256": file_sha256(m.file) if m.file is not None and m.file.is_file() else None,
            "info": {k: v for k, v in m.info.items() if k != "date"},
        }
        for m in members
    ]


def build_residual(
    base: str | os.PathLike, nets: list[str | os.PathLike], any_baseline: bool = False
):
    """(the :class:`~symgnn_ase.nn.ensemble.Residual` module, its members): ``base`` and the
    networks ``nets`` trained on what it leaves, summed. The members must share r_max,
    type_names and dtype; every net must be a run trained with ``data.baseline`` whose
    recorded baseline file is ``base`` (same sha256; ``any_baseline`` waives the latter)."""
    from .nn.ensemble import Residual, edge_width

    if not nets:
        raise ValueError("a residual model needs a baseline and at least 1 network, got none")
    members = [load_member(base)] + [load_member(n, residual_ok=True) for n in nets]
    _check_baseline(members[0], members[1:], any_baseline)
    _refuse_duplicates(members)
    _check_shared(members, "residual")
    _check_layerwise(members, "residual")
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
    from .outputs import check_output

    check_output(output, [str(base)] + [str(n) for n in nets], what="residual output")
    module, members = build_residual(base, nets, any_baseline)
    info = {"combine": "sum of the members' predictions (the first is the baseline)"}
    path = _export_stack(module, members, output, info)
    logger.info("exported a baseline and %d network(s) to %s", len(nets), path)
    return path


def _export_stack(
    module: torch.nn.Module,
    members: list[Member],
    output: str | os.PathLike,
    info: dict[str, Any],
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write an :class:`~symgnn_ase.nn.ensemble.Stack` with ``info`` plus its kind, its
    members' records and its parameter count."""
    from .export import export_model

    info = {
        "kind": module.kind,
        **info,
        "members": _members_info(members),
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


def export_ensemble(
    sources: list[str | os.PathLike], output: str | os.PathLike, std_scale: float = 1.0
) -> Path:
    """Write the ensemble of ``sources`` to ``output`` (TorchScript, with metadata)."""
    from .outputs import check_output

    check_output(output, [str(s) for s in sources], what="ensemble output")
    module, members = build_ensemble(sources, std_scale=std_scale)
    info = {
        "ensemble_size": len(members),
        "std": "sample standard deviation over the members (K - 1), times std_scale",
        "std_scale": float(std_scale),
    }
    path = _export_stack(
        module, members, output, info, metadata={ENSEMBLE_SIZE_KEY: str(len(members))}
    )
    logger.info("exported an ensemble of %d models to %s", len(members), path)
    return path
