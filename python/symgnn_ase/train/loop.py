"""Training: full-graph AMSGrad on standardized labels, selected on validation Pearson.

A run lives in one folder: the config as given, the git commit, ``metrics.csv``
(one row per epoch), ``last.pt`` (everything needed to continue exactly) and
``best.pt`` (the model with the best validation Pearson so far), both written
atomically; at the end ``learning_curve.png``, ``parity.png`` and
``summary.json``. ``resume=True`` continues a killed run from ``last.pt``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.graph import Graph, load_graphs
from ..data.io import file_sha256
from ..nn.config import ModelConfig
from ..nn.factory import build_model
from .checkpoints import atomic_save, load_checkpoint
from .config import load_config
from .evaluate import evaluate_graphs

logger = logging.getLogger(__name__)

__all__ = ["train"]


def _git_commit() -> str:
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


def _copy_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def _ema_update(ema: dict[str, torch.Tensor], model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * weights; integer buffers (counters) are copied."""
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            ema[key].mul_(decay).add_(value.detach(), alpha=1.0 - decay)
        else:
            ema[key].copy_(value)


def _jitter(g: Graph, sigma: float, gen: torch.Generator) -> torch.Tensor:
    """Edge vectors of ``g`` after displacing every atom by N(0, sigma^2) Å per axis."""
    if sigma <= 0.0:
        return g.edge_vec
    n = g.species.shape[0]
    delta = torch.randn((n, 3), generator=gen, dtype=g.edge_vec.dtype) * sigma
    return (
        g.edge_vec + delta.index_select(0, g.edge_index[0]) - delta.index_select(0, g.edge_index[1])
    )


def _write_csv(path: Path, history: list[dict[str, Any]]) -> None:
    if not history:
        return
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, path)


def train(
    config_path: str | os.PathLike,
    resume: bool = False,
    run_dir: str | os.PathLike | None = None,
    progress: bool = True,
    max_epochs: int | None = None,
) -> Path:
    """Train per the config; returns the run folder. See module docstring."""
    cfg = load_config(config_path)
    if run_dir is not None:
        cfg["run_dir"] = str(run_dir)
    out = Path(cfg["run_dir"])
    last_path = out / "last.pt"
    if out.exists() and (out / "last.pt").exists() and not resume:
        raise ValueError(
            f"run folder {out} already holds a run; pass --resume to continue it "
            "or choose another run_dir"
        )
    if resume and not last_path.exists():
        raise FileNotFoundError(f"--resume: no checkpoint {last_path} to continue from")
    out.mkdir(parents=True, exist_ok=True)
    if resume:
        saved = load_checkpoint(last_path)
        if saved["config"] != cfg:
            logger.warning("config differs from the one the run started with; using the saved one")
        cfg = saved["config"]
    else:
        shutil.copyfile(config_path, out / ("config" + Path(config_path).suffix))
        (out / "git_commit.txt").write_text(_git_commit() + "\n")
    if cfg["threads"] > 0:
        torch.set_num_threads(cfg["threads"])

    mcfg = ModelConfig.from_dict(cfg["model"])
    data = cfg["data"]
    t0 = time.perf_counter()
    train_graphs = load_graphs(data["train"], mcfg.r_max, mcfg.type_names, data["label"])
    valid_graphs = load_graphs([data["valid"]], mcfg.r_max, mcfg.type_names, data["label"])
    logger.info(
        "graphs: %d train, %d valid, built in %.1f s",
        len(train_graphs),
        len(valid_graphs),
        time.perf_counter() - t0,
    )
    labels = torch.cat([g.label for g in train_graphs])
    torch.manual_seed(cfg["seed"])
    model = build_model(mcfg)
    with torch.no_grad():
        model.label_mean.fill_(float(labels.mean()))
        model.label_std.fill_(float(labels.std()))
    opt_cfg = cfg["optim"]
    optim = torch.optim.Adam(
        model.parameters(),
        lr=opt_cfg["lr"],
        amsgrad=bool(opt_cfg["amsgrad"]),
        weight_decay=opt_cfg["weight_decay"],
    )
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optim,
        mode="max",
        factor=opt_cfg["lr_factor"],
        patience=opt_cfg["lr_patience"],
        min_lr=opt_cfg["min_lr"],
    )
    gen = torch.Generator().manual_seed(cfg["seed"])
    # `model` holds the parameters (checkpoints save its state); `run_model` may be compiled
    run_model = torch.compile(model, dynamic=True) if opt_cfg["compile"] else model
    ema_decay = float(opt_cfg.get("ema", 0.0))
    # the model validation sees: the averaged weights (a second, eager copy) or the model
    eval_model = build_model(mcfg) if ema_decay > 0 else model
    ema_state = _copy_state(model) if ema_decay > 0 else None
    history: list[dict[str, Any]] = []
    epoch, best, best_epoch, elapsed = 0, -math.inf, -1, 0.0
    if resume:
        model.load_state_dict(saved["model"])
        if ema_state is not None:
            ema_state = saved["ema"] if saved.get("ema") is not None else _copy_state(model)
        optim.load_state_dict(saved["optim"])
        sched.load_state_dict(saved["sched"])
        gen.set_state(saved["gen"])
        torch.set_rng_state(saved["rng"])
        history = list(saved["history"])
        epoch, best, best_epoch = saved["epoch"], saved["best"], saved["best_epoch"]
        elapsed = saved["elapsed"]
        logger.info("resumed %s at epoch %d (best valid pearson %.4f)", out, epoch, best)

    hashes = {os.path.basename(p): file_sha256(p) for p in list(data["train"]) + [data["valid"]]}
    mean, std = float(model.label_mean), float(model.label_std)
    n_epochs = opt_cfg["epochs"] if max_epochs is None else min(opt_cfg["epochs"], max_epochs)
    deadline = None
    if opt_cfg["max_minutes"]:
        deadline = time.perf_counter() + 60.0 * float(opt_cfg["max_minutes"]) - elapsed
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_epochs, initial=epoch, desc="train", unit="epoch", dynamic_ncols=True)
    stop_reason = "epochs"
    while epoch < n_epochs:
        if epoch - best_epoch > opt_cfg["patience"] and best_epoch >= 0:
            stop_reason = "early stopping (validation pearson)"
            break
        if deadline is not None and time.perf_counter() > deadline:
            stop_reason = "max_minutes"
            break
        t_epoch = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_graphs), generator=gen).tolist()
        losses = []
        for k in order:
            g = train_graphs[k]
            vec = _jitter(g, float(opt_cfg.get("position_noise", 0.0)), gen)
            pred = run_model(g.species, g.edge_index, vec)
            loss = torch.mean(((pred - g.label) / std) ** 2)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            if opt_cfg["grad_clip"]:
                torch.nn.utils.clip_grad_norm_(model.parameters(), opt_cfg["grad_clip"])
            optim.step()
            if ema_state is not None:
                _ema_update(ema_state, model, ema_decay)
            losses.append(loss.detach().item())
        # the eager model: at inference it runs the fused operators, which torch.compile
        # cannot trace
        if ema_state is not None:
            eval_model.load_state_dict(ema_state)
        metrics, _ = evaluate_graphs(eval_model, valid_graphs)
        val_r = metrics["pooled"]["pearson"]
        sched.step(val_r if math.isfinite(val_r) else -1.0)
        epoch += 1
        dt = time.perf_counter() - t_epoch
        elapsed += dt
        row = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            "valid_pearson": val_r,
            "valid_mae": metrics["pooled"]["mae"],
            "valid_rmse": metrics["pooled"]["rmse"],
            "lr": optim.param_groups[0]["lr"],
            "epoch_seconds": dt,
            "elapsed_seconds": elapsed,
        }
        history.append(row)
        improved = math.isfinite(val_r) and val_r > best
        if improved:
            best, best_epoch = val_r, epoch
            atomic_save(
                {
                    "model": eval_model.state_dict(),
                    "config": cfg,
                    "epoch": epoch,
                    "metrics": metrics,
                    "data_sha256": hashes,
                    "label_mean": mean,
                    "label_std": std,
                    "elapsed": elapsed,
                },
                out / "best.pt",
            )
        atomic_save(
            {
                "model": model.state_dict(),
                "ema": ema_state,
                "optim": optim.state_dict(),
                "sched": sched.state_dict(),
                "gen": gen.get_state(),
                "rng": torch.get_rng_state(),
                "config": cfg,
                "history": history,
                "epoch": epoch,
                "best": best,
                "best_epoch": best_epoch,
                "elapsed": elapsed,
            },
            last_path,
        )
        _write_csv(out / "metrics.csv", history)
        if bar is not None:
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", r=f"{val_r:.4f}", best=f"{best:.4f}")
            bar.update(1)
        logger.debug("epoch %d: %s", epoch, row)
    if bar is not None:
        bar.close()
    _finish(out, valid_graphs, stop_reason)
    return out


def _finish(out: Path, valid_graphs: list[Graph], stop_reason: str) -> None:
    """Plots and summary from the saved checkpoints."""
    from .plots import learning_curve, parity_plot

    last = load_checkpoint(out / "last.pt")
    history = last["history"]
    summary: dict[str, Any] = {"stop_reason": stop_reason, "epochs": last["epoch"]}
    if (out / "best.pt").exists():
        best = load_checkpoint(out / "best.pt")
        model = build_model(ModelConfig.from_dict(best["config"]["model"]))
        model.load_state_dict(best["model"])
        metrics, preds = evaluate_graphs(model, valid_graphs)
        summary.update(best_epoch=best["epoch"], valid=metrics, elapsed_to_best=best["elapsed"])
        parity_plot(
            np.concatenate(preds),
            np.concatenate([g.label.numpy() for g in valid_graphs]),
            out / "parity.png",
            title=f"valid, epoch {best['epoch']}: r = {metrics['pooled']['pearson']:.4f}",
        )
    summary["train_seconds"] = last["elapsed"]
    learning_curve(history, out / "learning_curve.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    logger.info(
        "run %s finished (%s): %s",
        out,
        stop_reason,
        json.dumps(summary.get("valid", {}).get("pooled", {})),
    )
