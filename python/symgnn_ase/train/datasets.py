"""Training data: groups of labelled frames (relaxed, thermal, partially labelled), label checks,
data hashes for resuming, and the weights a run starts from (``init``)."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..data.graph import Graph
from ..data.io import file_sha256
from .config import expand_files

if TYPE_CHECKING:
    from ..export import LoadedModel

logger = logging.getLogger(__name__)

__all__ = [
    "TrainGroup",
    "check_labels",
    "data_hashes",
    "epoch_order",
    "load_baseline",
    "load_init",
    "load_on_graph",
    "load_train_groups",
    "load_valid_sets",
    "run_baseline",
    "subtract_baseline",
]


@dataclass
class TrainGroup:
    """Frames that share a loss weight and a per-epoch sample size (None: every frame)."""

    files: list[str]
    graphs: list[Graph] = field(default_factory=list)
    weight: float = 1.0
    frames_per_epoch: int | None = None


def named_graphs(
    files: list[str],
    r_max: float,
    type_names: list[str],
    label: str,
    dtype: torch.dtype = torch.float32,
) -> list[Graph]:
    """One graph per frame of every file, named ``file`` or ``file@frame`` (as
    :func:`~symgnn_ase.data.graph.load_graphs`); an error (a missing label array, an element
    the model lacks, a label array that is a symgnn prediction) names the file it is in."""
    from ..data.graph import graph_from_atoms
    from ..data.io import read_structures, refuse_prediction_as_label

    graphs: list[Graph] = []
    for path in files:
        try:
            frames = read_structures(path)
            base = os.path.basename(str(path))
            for k, atoms in enumerate(frames):
                name = base if len(frames) == 1 else f"{base}@{k}"
                refuse_prediction_as_label(atoms, label, name)
                g = graph_from_atoms(atoms, r_max, type_names, dtype=dtype, label_key=label)
                g.name = name
                graphs.append(g)
        except ValueError as exc:
            text = str(exc)
            if str(path) in text or os.path.basename(str(path)) in text:
                raise
            raise ValueError(f"{path}: {text}") from None
    return graphs


def check_labels(g: Graph, label: str, partial: bool, label_range: list[float]) -> None:
    """Labels finite (NaN allowed only when ``partial``) and inside ``label_range``."""
    y = g.label.double().numpy()
    finite = np.isfinite(y)
    bad = np.flatnonzero(~finite & ~np.isnan(y)) if partial else np.flatnonzero(~finite)
    if bad.size:
        k = int(bad[0])
        hint = "" if partial else " (set data.partial_labels: true if NaN marks unlabelled atoms)"
        raise ValueError(
            f"{g.name}: label `{label}` of atom {k} is {y[k]}; labels must be finite{hint} "
            f"({bad.size} atom(s) affected)"
        )
    if not finite.any():
        raise ValueError(f"{g.name}: no atom carries a finite `{label}` label")
    lo, hi = label_range
    out = np.flatnonzero(finite & ((y < lo) | (y > hi)))
    if out.size:
        k = int(out[0])
        raise ValueError(
            f"{g.name}: label `{label}` of atom {k} is {y[k]:.6g}, outside data.label_range "
            f"[{lo}, {hi}] ({out.size} atom(s) affected)"
        )


def load_on_graph(
    source: str, key: str, r_max: float, type_names: list[str], what: str, why: str
) -> LoadedModel:
    """The model file ``source`` named by config key ``key``, refused unless its r_max and
    species are those of ``what`` (the model being trained or fitted): ``why`` they must be."""
    from ..export import load_model

    loaded = load_model(source)
    if loaded.node_inputs is not None:
        raise ValueError(
            f"{key}: {loaded.path} takes per-atom inputs {list(loaded.node_inputs.names)} from "
            "the potential (metadata node_inputs), which training does not compute for it"
        )
    if loaded.r_max != r_max or list(loaded.type_names) != list(type_names):
        raise ValueError(
            f"{key}: {loaded.path} has r_max {loaded.r_max:g} Å and species "
            f"{list(loaded.type_names)}; the {what} has r_max {r_max:g} Å and "
            f"{list(type_names)} (they must match: {why})"
        )
    return loaded


def load_baseline(source: str, mcfg) -> LoadedModel:
    """The model of ``data.baseline``, checked against the network: the same cutoff and species
    (its predictions are made on the network's neighbour list)."""
    return load_on_graph(
        source,
        "data.baseline",
        mcfg.r_max,
        mcfg.type_names,
        "model",
        "the baseline predicts on the same neighbour list",
    )


def run_baseline(config: dict[str, Any]) -> str | None:
    """The ``data.baseline`` of a run's saved config (None: the run learned the labels)."""
    return (config.get("data") or {}).get("baseline")


def subtract_baseline(g: Graph, baseline: LoadedModel) -> None:
    """Store ``baseline``'s prediction on ``g`` (``g.baseline``) and take it off ``g.label``."""
    with torch.no_grad():
        b = baseline.module(g.species, g.edge_index, g.edge_vec.to(baseline.dtype)).float()
    if b.shape != g.label.shape:
        raise ValueError(
            f"{g.name}: data.baseline {baseline.path} gave predictions of shape "
            f"{tuple(b.shape)}, want one per atom {tuple(g.label.shape)}"
        )
    bad = torch.nonzero(~torch.isfinite(b)).flatten()
    if bad.numel():
        k = int(bad[0])
        raise ValueError(
            f"{g.name}: data.baseline {baseline.path} predicted {float(b[k])} for atom {k} "
            f"({bad.numel()} atom(s) non-finite); a baseline must give finite barriers"
        )
    g.baseline = b
    g.label = g.label - b


def _load(
    files: list[str],
    mcfg,
    data: dict[str, Any],
    baseline: LoadedModel | None = None,
    inputs: Any = None,
) -> list[Graph]:
    graphs = named_graphs(files, mcfg.r_max, mcfg.type_names, data["label"])
    values = [v for f in files for v, _ in inputs.frames(f)] if inputs is not None else None
    for k, g in enumerate(graphs):
        check_labels(g, data["label"], data["partial_labels"], data["label_range"])
        if baseline is not None:
            subtract_baseline(g, baseline)
        if values is not None:  # model.node_inputs: the potential's values of this frame
            g.node_inputs = torch.from_numpy(values[k])
    return graphs


def load_train_groups(
    data: dict[str, Any], mcfg, baseline: LoadedModel | None = None, inputs: Any = None
) -> list[TrainGroup]:
    """The training frames by group; ``inputs`` (:class:`~.node_inputs.TrainingInputs`) gives
    every frame its node inputs."""
    groups = []
    for spec in data["train"]:
        files = expand_files(spec["files"])
        group = TrainGroup(
            files=files,
            graphs=_load(files, mcfg, data, baseline, inputs),
            weight=float(spec["weight"]),
            frames_per_epoch=spec["frames_per_epoch"],
        )
        groups.append(group)
    return groups


def load_valid_sets(
    data: dict[str, Any], mcfg, baseline: LoadedModel | None = None, inputs: Any = None
) -> list[tuple[str, list[Graph]]]:
    """One validation set per file (its frames pooled), in config order."""
    files = expand_files(data["valid"])
    train_files = {
        os.path.realpath(f) for spec in data["train"] for f in expand_files(spec["files"])
    }
    for f in files:
        if os.path.realpath(f) in train_files:
            logger.warning("validation file %s is also a training file: selection is biased", f)
    return [(os.path.basename(f), _load([f], mcfg, data, baseline, inputs)) for f in files]


def data_hashes(data: dict[str, Any]) -> dict[str, str]:
    """sha256 of every training and validation file, keyed by file name (the configured path
    where two files share a name), and of the ``data.baseline`` model file (key
    ``data.baseline``): a resumed run must subtract the same baseline."""
    files = [f for spec in data["train"] for f in expand_files(spec["files"])]
    files += [f for f in expand_files(data["valid"]) if f not in files]
    names = [os.path.basename(f) for f in files]
    out = {
        (n if names.count(n) == 1 else f): file_sha256(f) for f, n in zip(files, names, strict=True)
    }
    if data.get("baseline"):
        from ..format import resolve_model_path

        out["data.baseline"] = file_sha256(resolve_model_path(data["baseline"]))
    return out


def epoch_order(groups: list[TrainGroup], gen: torch.Generator) -> list[tuple[int, int]]:
    """(group, frame) pairs of one epoch, shuffled; sampled groups draw without replacement."""
    pairs = []
    for gi, group in enumerate(groups):
        n = len(group.graphs)
        if group.frames_per_epoch is None or group.frames_per_epoch >= n:
            pick = range(n)
        else:
            pick = torch.randperm(n, generator=gen)[: group.frames_per_epoch].tolist()
        pairs.extend((gi, k) for k in pick)
    order = torch.randperm(len(pairs), generator=gen).tolist()
    return [pairs[k] for k in order]


def load_init(
    init: str | os.PathLike, baseline: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Weights and model config of a run folder (best.pt), a checkpoint or an exported file.

    A run trained with ``data.baseline`` learned a remainder, with that remainder's label
    standardization: it starts only a run with the same ``baseline``."""
    path = Path(init)
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise FileNotFoundError(f"init: no model, run folder or checkpoint at {init}")
    import zipfile

    if not zipfile.is_zipfile(path):
        raise ValueError(f"init: {path} is neither a checkpoint nor an exported model file")
    with zipfile.ZipFile(path) as zf:
        scripted = any(
            name.endswith("/code/__torch__.py") or "/code/" in name for name in zf.namelist()
        )
    if scripted:
        from ..export import load_model

        loaded = load_model(path)
        mcfg = (loaded.info or {}).get("model")
        kind = (loaded.info or {}).get("kind")
        if kind in ("ensemble", "smoothed", "residual"):
            raise ValueError(
                f"init: {path} is a model file of kind `{kind}` (several models, or a model behind the "
                "smoothing), not one model to continue training: give one "
                "model, e.g. "
                "the bundled `symgnn_length`, or a run folder"
            )
        if not isinstance(mcfg, dict):
            raise ValueError(f"init: {path} has no model configuration in its metadata `info`")
        state = {k: v.detach().clone() for k, v in loaded.module.state_dict().items()}
        return state, mcfg
    from .checkpoints import load_checkpoint

    ckpt = load_checkpoint(path)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise ValueError(f"init: {path} is not a symgnn checkpoint (no model/config entries)")
    theirs = run_baseline(ckpt["config"])
    if theirs != baseline:
        raise ValueError(
            f"init: {path} was trained with data.baseline {theirs!r}, this config has "
            f"{baseline!r}: the weights and label standardization are those of "
            f"{'the remainder of ' + repr(theirs) if theirs else 'the full labels'}; "
            "start from a run with the same data.baseline"
        )
    if theirs:  # the same name must be the same file
        from ..format import resolve_model_path

        recorded = (ckpt.get("data_sha256") or {}).get("data.baseline")
        now = file_sha256(resolve_model_path(theirs))
        if recorded != now:
            raise ValueError(
                f"init: {path} was trained on the remainder of data.baseline {theirs!r} with "
                f"sha256 {(recorded or 'not recorded')[:12]}, but that file is now "
                f"{now[:12]}: the weights learned another baseline's remainder"
            )
    return ckpt["model"], ckpt["config"]["model"]


def label_stats(groups: list[TrainGroup]) -> tuple[float, float]:
    """Mean and standard deviation of every finite training label (one global standardization)."""
    y = torch.cat([g.label.double() for group in groups for g in group.graphs])
    y = y[torch.isfinite(y)]
    mean, std = float(y.mean()), float(y.std())
    if not math.isfinite(std) or std <= 0:
        raise ValueError(f"training labels have no spread (std {std}); nothing to learn")
    return mean, std
