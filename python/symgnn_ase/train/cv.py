"""Leave-one-glass-out cross-validation of a training config: the project's yardstick for a
modelling decision (one validation glass is too narrow a judge for +0.01 steps).

The glasses are the files of the config's ``data.train`` and ``data.valid``, grouped by their
glass key: a file's name up to its first ``_`` or ``.`` (``train0.extxyz`` and
``train0_T300.extxyz.gz`` both belong to ``train0``; ``valid_T600.extxyz.gz`` to ``valid``).
Fold k holds glass k out entirely (every file derived from it), early-stops (or, for a
closed-form ``ridge`` fit, picks its alpha) on the next glass in sorted order (the inner
validation glass, also left out of the fold's training), trains on the rest (the config's
validation files included: they join the training group holding files of their kind, else
the first group), and scores the
held-out glass's files with the fold's best model. Scores are pooled Pearson per file; the
fold's score is that of the held-out glass's own file (the one whose name is the key), and
the summary gives the mean and the spread (standard deviation) over folds.

A fold's folder holds its config, its run folder, the exported model and ``score.json``
(written atomically last): a fold with ``score.json`` is done, a fold whose run has
``last.pt`` resumes, so the command can be killed and rerun, and folds can be run one at a
time (``--folds``), e.g. in separate processes. ``data.baseline`` is refused, and so is an
``init`` naming one model: a model trained on every glass would leak the held-out glass into
its own fold. An ``init`` holding ``{fold}`` names each fold's own starting model (``{fold}``
becomes the fold's folder name, ``fold3_train3``: e.g. ``training/cv/length_budget/{fold}/run``,
the folds of an earlier study); its checkpoint's data hashes must not include a file of the
held-out glass.

    symgnn cv CONFIG -o DIR [--folds train0 valid ...]
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..outputs import atomic_path
from .config import expand_files, load_config

__all__ = ["glass_key", "fold_plan", "run_cv", "summarize"]

logger = logging.getLogger(__name__)


def glass_key(path: str | os.PathLike) -> str:
    """The glass a data file belongs to: its name up to the first ``_`` or ``.``."""
    name = Path(path).name
    return re.split(r"[_.]", name, maxsplit=1)[0]


def _kind(path: str) -> str:
    """What a file is for its glass: its name less the glass key (``.extxyz``, ``_T300...``)."""
    name = Path(path).name
    return name[len(glass_key(name)) :]


def _glass_files(cfg: dict[str, Any]) -> dict[str, list[str]]:
    """Every file of the config (absolute paths) by glass key, in config order."""
    out: dict[str, list[str]] = {}
    files = [f for g in cfg["data"]["train"] for f in expand_files(g["files"])]
    files += expand_files(cfg["data"]["valid"])
    for f in files:
        path = str(Path(f).resolve())
        out.setdefault(glass_key(path), [])
        if path not in out[glass_key(path)]:
            out[glass_key(path)].append(path)
    return out


def fold_plan(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per glass: the held-out glass, the inner validation glass, and the files of
    each side (``train_groups`` keep the config's groups, weights and frame counts)."""
    by_glass = _glass_files(cfg)
    keys = sorted(by_glass)
    if len(keys) < 3:
        raise ValueError(
            f"cross-validation needs at least 3 glasses (held out, inner validation, training), "
            f"the config's files make {len(keys)}: {keys}"
        )
    # a validation file trains in the folds that neither score nor early-stop on its glass: in
    # the group holding files of its kind (its name less the glass key: `_T300.extxyz.gz`),
    # else in the first group (the relaxed glasses)
    all_groups = []
    for g in cfg["data"]["train"]:
        all_groups.append(
            {**g, "files": [str(Path(f).resolve()) for f in expand_files(g["files"])]}
        )
    for f in expand_files(cfg["data"]["valid"]):
        path = str(Path(f).resolve())
        if any(path in g["files"] for g in all_groups):
            continue
        kind = _kind(path)
        target = next((g for g in all_groups if any(_kind(x) == kind for x in g["files"])), None)
        (target or all_groups[0])["files"].append(path)
    plan = []
    for k, held in enumerate(keys):
        inner = keys[(k + 1) % len(keys)]
        out = {held, inner}
        groups = []
        for g in all_groups:
            files = [f for f in g["files"] if glass_key(f) not in out]
            if files:
                groups.append({**g, "files": files})
        if not groups:
            raise ValueError(
                f"fold {k} (glass {held} held out, {inner} for early stopping) has no training "
                f"file left: every file of the config belongs to one of those two glasses"
            )
        # the inner glass's own file (named as the key) first: `selection: first` scores it
        valid = sorted(by_glass[inner], key=lambda f: Path(f).name.split(".")[0] != inner)
        plan.append(
            {
                "fold": k,
                "held_out": held,
                "inner_valid": inner,
                "train_groups": groups,
                "valid": valid,
                "test": by_glass[held],
            }
        )
    return plan


def fold_init(cfg: dict[str, Any], fold: dict[str, Any], folder: Path) -> str | None:
    """The fold's ``init`` (``{fold}`` replaced by its folder name), refused when the
    checkpoint there was trained on a file of the held-out glass (by name or content)."""
    if cfg["init"] is None:
        return None
    path = Path(str(cfg["init"]).replace("{fold}", folder.name))
    ckpt_path = path / "best.pt" if path.is_dir() or path.suffix != ".pt" else path
    if not ckpt_path.is_file():
        raise FileNotFoundError(
            f"init {cfg['init']}: fold {fold['held_out']} starts from {ckpt_path}, which does "
            "not exist (run the study it names first)"
        )
    from ..data.io import file_sha256
    from .checkpoints import load_checkpoint

    seen = load_checkpoint(ckpt_path).get("data_sha256") or {}
    held = {file_sha256(f) for f in fold["test"]}
    leaked = sorted(
        name
        for name, digest in seen.items()
        if digest in held or glass_key(name) == fold["held_out"]
    )
    if leaked:
        raise ValueError(
            f"init {ckpt_path}: it was trained on {leaked}, of glass {fold['held_out']}, which "
            "this fold holds out: its score would not be held out"
        )
    return str(path)


def _fold_config(cfg: dict[str, Any], fold: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    groups = []
    for g in fold["train_groups"]:
        entry: dict[str, Any] = {"files": g["files"], "weight": g["weight"]}
        if g["frames_per_epoch"] is not None:
            entry["frames_per_epoch"] = g["frames_per_epoch"]
        groups.append(entry)
    data = {k: v for k, v in cfg["data"].items() if k != "baseline"}
    data.update(train=groups, valid=fold["valid"])
    out = {
        "run_dir": str(run_dir),
        "seed": cfg["seed"],
        "threads": cfg["threads"],
        "data": data,
        "model": cfg["model"],
        "optim": cfg["optim"],
    }
    init = fold_init(cfg, fold, run_dir.parent)
    if init is not None:
        out["init"] = init
    if cfg["freeze"] is not None:
        out["freeze"] = cfg["freeze"]
    return out


def _write_json(path: Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2) + "\n")


def _run_fold(cfg: dict[str, Any], fold: dict[str, Any], folder: Path, progress: bool) -> dict:
    import yaml

    from ..export import load_model
    from .evaluate import evaluate_files
    from .export import export_run

    done = folder / "score.json"
    if done.exists():
        return json.loads(done.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    run_dir = folder / "run"
    config_path = folder / "config.yaml"
    fold_cfg = _fold_config(cfg, fold, run_dir)
    text = yaml.safe_dump(fold_cfg, sort_keys=False)
    if config_path.exists() and config_path.read_text() != text:
        raise ValueError(
            f"{config_path} was written for another config (the CV folder {folder.parent} holds "
            "a different study): give another -o folder"
        )
    with atomic_path(config_path) as tmp:
        Path(tmp).write_text(text)
    if not (run_dir / "summary.json").exists():  # any kind (ridge, freeze: body, networks)
        from .loop import train

        train(config_path, resume=(run_dir / "last.pt").exists(), progress=progress)
    model_path = folder / "model.pt"
    if not model_path.exists():
        export_run(run_dir, model_path)
    model = load_model(model_path)
    result = evaluate_files(model, fold["test"], label=cfg["data"]["label"])
    own = [
        name for name in result["per_file"] if name.split("@")[0].split(".")[0] == fold["held_out"]
    ]
    score = {
        "fold": fold["fold"],
        "held_out": fold["held_out"],
        "inner_valid": fold["inner_valid"],
        "train_files": [f for g in fold["train_groups"] for f in g["files"]],
        "pearson": result["per_file"][own[0]]["pearson"] if own else float("nan"),
        "mae": result["per_file"][own[0]]["mae"] if own else float("nan"),
        "per_file": {n: m["pearson"] for n, m in result["per_file"].items()},
    }
    _write_json(done, score)
    return score


def summarize(scores: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread over folds of the held-out Pearson (and of each file suffix)."""
    values = np.array([s["pearson"] for s in scores], dtype=np.float64)
    out: dict[str, Any] = {
        "folds": len(scores),
        "pearson_mean": float(values.mean()) if len(values) else math.nan,
        "pearson_std": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
        "pearson_min": float(values.min()) if len(values) else math.nan,
        "per_fold": {s["held_out"]: s["pearson"] for s in scores},
    }
    # frames derived from the held-out glass (thermal snapshots ...), by their name less the key
    by_kind: dict[str, list[float]] = {}
    for s in scores:
        for name, value in s["per_file"].items():
            kind = name.split("@")[0][len(s["held_out"]) :].lstrip("_").split(".")[0] or "relaxed"
            by_kind.setdefault(kind, []).append(value)
    out["by_file_kind"] = {k: float(np.mean(v)) for k, v in sorted(by_kind.items())}
    return out


def run_cv(
    config_path: str | os.PathLike,
    output: str | os.PathLike,
    folds: list[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or resume) the folds of ``config_path`` into ``output``; returns the summary of
    every finished fold (also written to ``output/cv.json``)."""
    cfg = load_config(config_path)
    for key, value in (
        ("init", cfg["init"] if "{fold}" not in str(cfg["init"] or "") else None),
        ("data.baseline", cfg["data"]["baseline"]),
    ):
        if value is not None:
            raise ValueError(
                f"{config_path}: `{key}: {value}` is refused in cross-validation: a model "
                "trained on every glass would leak each held-out glass into its own fold"
            )
    if cfg["model"] is None:
        raise ValueError(f"{config_path}: cross-validation needs a `model` section")
    plan = fold_plan(cfg)
    known = [f["held_out"] for f in plan]
    if folds:
        unknown = sorted(set(folds) - set(known))
        if unknown:
            raise ValueError(f"--folds: unknown glass(es) {unknown}; the config's glasses: {known}")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    scores = []
    for fold in plan:
        folder = out / f"fold{fold['fold']}_{fold['held_out']}"
        if folds and fold["held_out"] not in folds:
            if (folder / "score.json").exists():
                scores.append(json.loads((folder / "score.json").read_text()))
            continue
        logger.info("fold %d: %s held out", fold["fold"], fold["held_out"])
        scores.append(_run_fold(cfg, fold, folder, progress))
    summary = {"config": str(config_path), **summarize(scores)}
    _write_json(out / "cv.json", summary)
    return summary
