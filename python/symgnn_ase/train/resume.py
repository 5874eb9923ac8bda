"""A training run's folder bookkeeping: the git commit it records, the config a resumed run
continues with (and what it may change), and ``metrics.csv``."""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path
from typing import Any

from ..outputs import write_text
from .config import OPTIM_DEFAULTS

__all__ = [
    "git_commit",
    "single_head",
    "resume_config",
    "write_csv",
    "epoch_row",
    "run_checkpoint",
    "restore",
    "RESUMABLE_CHANGES",
]


def git_commit() -> str:
    try:
        here = Path(__file__).resolve().parent
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def single_head(model: dict[str, Any], init_model: dict[str, Any]) -> dict[str, Any]:
    """The config's model section as the init model's would be when only what ``init`` can
    extend differs: readout_heads, from an init model with one head (its decoder is widened to
    the heads, nn/shallow.py); node_inputs, from an init model without inputs (their weights
    start at zero, nn/inputs.py)."""
    out = dict(model)
    if int(init_model.get("readout_heads", 1)) == 1:
        out.pop("readout_heads", None)
    if not init_model.get("node_inputs"):
        out.pop("node_inputs", None)
    return out


# config keys a resumed run may change: they extend or stop it, they do not alter the model
RESUMABLE_CHANGES = {("optim", "epochs"), ("optim", "patience"), ("optim", "max_minutes")}


def _config_changes(saved: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str]]:
    changes = []
    for section in sorted(set(saved) | set(new)):
        a, b = saved.get(section), new.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    changes.append((section, key))
        elif a != b:
            changes.append((section, ""))
    return changes


def resume_config(
    saved: dict[str, Any], cfg: dict[str, Any], hashes: dict[str, str], allow: bool
) -> dict[str, Any]:
    """The config a resumed run continues with; refuses changed data or model settings."""
    old_hashes = saved.get("data_sha256")
    if old_hashes is not None and old_hashes != hashes and not allow:
        changed = sorted(
            k for k in set(old_hashes) | set(hashes) if old_hashes.get(k) != hashes.get(k)
        )
        raise ValueError(
            f"--resume: the training/validation data changed since the run started "
            f"({', '.join(changed[:5])}); pass --allow-changes to continue anyway"
        )
    # options added after the checkpoint was written had their default then
    saved_cfg = dict(saved["config"])
    saved_cfg["optim"] = OPTIM_DEFAULTS | dict(saved_cfg.get("optim") or {})
    if cfg["model"] is None:  # taken from `init` when the run started
        cfg = dict(cfg, model=saved_cfg["model"])
    changes = _config_changes(saved_cfg, cfg)
    fixed = [c for c in changes if c not in RESUMABLE_CHANGES and c[0] != "run_dir"]
    if fixed and not allow:
        names = ", ".join(f"{s}.{k}" if k else s for s, k in fixed)
        raise ValueError(
            f"--resume: the config changed in {names} since the run started; only "
            "optim.epochs, optim.patience and optim.max_minutes may change "
            "(pass --allow-changes to continue anyway)"
        )
    merged = dict(saved_cfg)
    merged["optim"] = dict(merged["optim"])
    for section, key in changes:
        if (section, key) in RESUMABLE_CHANGES or allow:
            if key:
                merged.setdefault(section, {})
                merged[section] = dict(merged[section]) if isinstance(merged[section], dict) else {}
                merged[section][key] = cfg[section][key]
            else:
                merged[section] = cfg[section]
    merged["run_dir"] = cfg["run_dir"]
    return merged


def write_csv(path: Path, history: list[dict[str, Any]]) -> None:
    if not history:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    write_text(path, buf.getvalue())


def epoch_row(
    epoch: int,
    losses: list[float],
    weights: list[float],
    metrics: dict[str, Any],
    lr: float,
    seconds: float,
    elapsed: float,
) -> dict[str, Any]:
    """One row of ``metrics.csv`` after an epoch: the weighted training loss, the validation
    score and the first set's errors, the learning rate and times; with several validation
    files, each file's Pearson and prediction spread (and a shallow ensemble's heads' spread,
    ``mean_std``/``mean_z2``, where the metrics hold them)."""
    import numpy as np

    row = dict(
        epoch=epoch,
        train_loss=float(np.average(losses, weights=weights)),
        valid_pearson=metrics["score"],
        valid_mae=metrics["pooled"]["mae"],
        valid_rmse=metrics["pooled"]["rmse"],
        lr=lr,
        epoch_seconds=seconds,
        elapsed_seconds=elapsed,
    )
    for name, m in metrics["sets"].items():
        columns = ["pearson", "pred_std"] if len(metrics["sets"]) > 1 else []
        row.update({f"{c}:{name}": m[c] for c in columns + ["mean_std", "mean_z2"] if c in m})
    return row


def close_epoch(
    epoch: int,
    started: float,
    elapsed: float,
    metrics: dict[str, Any],
    losses: list[float],
    weights: list[float],
    optim: Any,
    sched: Any,
) -> tuple[int, float, dict[str, Any]]:
    """After an epoch's validation (``metrics``), begun at ``time.perf_counter()`` ``started``:
    the schedule steps on its score (a non-finite score counts as -1), and the epoch count and
    the training time advance. Returns (epoch, elapsed seconds, the epoch's metrics.csv row)."""
    import math
    import time

    score = metrics["score"]
    sched.step(score if math.isfinite(score) else -1.0)
    seconds = time.perf_counter() - started
    elapsed += seconds
    lr = optim.param_groups[0]["lr"]
    return epoch + 1, elapsed, epoch_row(epoch + 1, losses, weights, metrics, lr, seconds, elapsed)


def run_checkpoint(
    state: dict[str, Any], cfg: dict[str, Any], epoch: int, hashes: dict[str, str], **extra: Any
) -> dict[str, Any]:
    """What a run's best.pt holds (``state``: the model's; ``extra``: metrics, label_mean,
    label_std, elapsed, ...); last.pt adds what resuming needs."""
    return {"model": state, "config": cfg, "epoch": epoch, "data_sha256": hashes, **extra}


def restore(saved: dict[str, Any], optim: Any, sched: Any, gen: Any) -> tuple:
    """Put the optimizer, schedule and generator of a run's last.pt (``saved``) back; returns
    its (history, epoch, best score, best epoch, elapsed seconds)."""
    for part, key in ((optim, "optim"), (sched, "sched")):
        part.load_state_dict(saved[key])
    gen.set_state(saved["gen"])
    progress = [saved[key] for key in ("epoch", "best", "best_epoch", "elapsed")]
    return (list(saved["history"]), *progress)
