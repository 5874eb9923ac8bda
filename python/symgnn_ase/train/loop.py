"""Training: full-graph AMSGrad on standardized labels, selected on validation Pearson.

A run lives in one folder: the config as given, the git commit, ``metrics.csv``
(one row per epoch), ``last.pt`` (everything needed to continue exactly) and
``best.pt`` (the model with the best validation Pearson so far), both written
atomically; at the end ``learning_curve.png``, ``parity.png`` and
``summary.json``. ``resume=True`` continues a killed run from ``last.pt``.

Validation may hold several files (relaxed and thermal frames of the validation glass):
``data.selection: mean`` selects on the mean of their pooled Pearsons. Labels are checked
on load; NaN marks an unlabelled atom only with ``data.partial_labels``. Resuming checks the
data hashes and the config against the checkpoint (only ``optim.epochs``, ``optim.patience``
and ``optim.max_minutes`` may change) unless ``allow_changes``.

``optim.frames_per_step`` > 1 averages the gradients of that many frames (in the epoch's
order) into each optimizer step; under ``torchrun --nproc_per_node N`` the frames of a step are
split between the N processes and their gradients all-reduced, so N processes train exactly as
one does with the same ``frames_per_step`` (:mod:`symgnn_ase.train.distributed`). Rank 0
validates and writes the run folder; a run resumes under any number of processes.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.graph import Graph
from ..nn.base import set_input_scale
from ..nn.config import ModelConfig
from ..nn.factory import build_model
from ..nn.inputs import INPUT_STATE_KEYS
from ..nn.shallow import WIDEN_NOISE, widen_readout
from ..outputs import write_text
from ..runtime import torch_threads
from .checkpoints import atomic_save, load_checkpoint
from .config import check_run_dir, load_config, optimizer
from .datasets import (
    data_hashes,
    epoch_order,
    label_stats,
    load_baseline,
    load_init,
    load_train_groups,
    load_valid_sets,
)
from .distributed import SINGLE, BatchNormReplay, Dist
from .distributed import setup as setup_distributed
from .evaluate import evaluate_graphs
from .node_inputs import training_inputs
from .resume import RESUMABLE_CHANGES as RESUMABLE_CHANGES
from .resume import close_epoch, restore, run_checkpoint
from .resume import git_commit as _git_commit
from .resume import resume_config as _resume_config
from .resume import single_head as _single_head
from .resume import write_csv as _write_csv
from .shallow_loss import frame_loss, training_view
from .steps import copy_state as _copy_state
from .steps import ema_update as _ema_update
from .steps import freeze_batchnorm as _freeze_batchnorm
from .steps import jitter as _jitter
from .steps import recalibrate_batchnorm as _recalibrate_batchnorm

logger = logging.getLogger(__name__)

__all__ = ["train"]


def _loss(pred: torch.Tensor, g: Graph, std: float, optim: dict[str, Any]) -> torch.Tensor:
    """Mean squared standardized error over the labelled atoms of ``g`` (a shallow ensemble's
    heads [M, N]: train/shallow_loss.py)."""
    return frame_loss(pred, g.label, g.label_mask, std, optim)


def train(
    config_path: str | os.PathLike,
    resume: bool = False,
    run_dir: str | os.PathLike | None = None,
    progress: bool = True,
    max_epochs: int | None = None,
    allow_changes: bool = False,
) -> Path:
    """Train per the config; returns the run folder. See module docstring. The one entry for
    every trainable kind: a ``freeze: body`` config trains the readout alone
    (:func:`~.readout.fit_readout`), kind ``ridge`` is fitted in closed form
    (:func:`~.ridge.fit_ridge`), everything else trains here.

    Under torchrun (``WORLD_SIZE`` > 1) every process calls this; rank 0 writes the folder.
    """
    cfg = load_config(config_path)
    if cfg["freeze"] == "body":  # the readout alone, on the frozen network of `init`
        from .readout import fit_readout

        return fit_readout(
            config_path,
            run_dir=run_dir,
            resume=resume,
            allow_changes=allow_changes,
            max_epochs=max_epochs,
        )
    if cfg["model"] is not None and cfg["model"]["kind"] == "ridge":  # closed form, no epochs
        if resume:
            raise ValueError("--resume: a ridge fit (model.kind: ridge) has nothing to resume")
        from .ridge import fit_ridge

        return fit_ridge(config_path, run_dir=run_dir)
    dist = setup_distributed()
    try:
        return _train(dist, config_path, resume, run_dir, progress, max_epochs, allow_changes)
    finally:
        dist.close()


def _train(
    dist: Dist,
    config_path: str | os.PathLike,
    resume: bool,
    run_dir: str | os.PathLike | None,
    progress: bool,
    max_epochs: int | None,
    allow_changes: bool,
) -> Path:
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
    if not resume:  # a new run copies its config into the folder
        check_run_dir(config_path, out)
    if resume and not last_path.exists():
        raise FileNotFoundError(f"--resume: no checkpoint {last_path} to continue from")
    hashes = data_hashes(cfg["data"])
    saved = None
    if resume:
        saved = load_checkpoint(last_path)
        cfg = _resume_config(saved, cfg, hashes, allow_changes)
    init_state = None
    if cfg["init"] is not None and not resume:
        init_state, init_model = load_init(cfg["init"], cfg["data"]["baseline"])
        if cfg["model"] is None:
            cfg["model"] = ModelConfig.from_dict(init_model).to_dict()
        elif ModelConfig.from_dict(init_model).to_dict() != _single_head(cfg["model"], init_model):
            raise ValueError(
                f"init {cfg['init']}: its model configuration differs from the config's `model` "
                "section (other than readout_heads, widened from one head); leave `model` out "
                "to use the init model's"
            )
    if cfg["model"] is None:
        raise ValueError(f"{config_path}: a `model` section (or `init`) is required")
    fps = cfg["optim"].get("frames_per_step", 1)
    if dist.world > fps:
        raise ValueError(
            f"{dist.world} processes but optim.frames_per_step is {fps}: the frames of a step "
            "are split between the processes, so frames_per_step must be at least the number "
            "of processes (a multiple of it keeps every process busy)"
        )
    dist.barrier()  # every process checked the run folder (check_run_dir) before it is written
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        if not resume:
            shutil.copyfile(config_path, out / ("config" + Path(config_path).suffix))
            write_text(out / "git_commit.txt", _git_commit() + "\n")
    dist.barrier()
    with torch_threads(cfg["threads"]):
        return _run(cfg, out, saved, init_state, hashes, progress, max_epochs, dist, config_path)


def _run(
    cfg: dict[str, Any],
    out: Path,
    saved: dict[str, Any] | None,
    init_state: dict[str, torch.Tensor] | None,
    hashes: dict[str, str],
    progress: bool,
    max_epochs: int | None,
    dist: Dist = SINGLE,
    config_path: str | os.PathLike = "config",
) -> Path:
    last_path = out / "last.pt"
    mcfg = ModelConfig.from_dict(cfg["model"])
    data = cfg["data"]
    t0 = time.perf_counter()
    baseline = None
    if data.get("baseline") is not None:
        baseline = load_baseline(data["baseline"], mcfg)
        logger.info("labels less the predictions of the baseline %s", baseline.path)
    inputs = training_inputs(mcfg, data, config_path)  # model.node_inputs, else None
    groups = load_train_groups(data, mcfg, baseline, inputs)
    valid_sets = load_valid_sets(data, mcfg, baseline, inputs)
    spec = None
    if inputs is not None:  # their standardization and per-species stats: the training frames
        spec, in_mean, in_std = inputs.spec([f for group in groups for f in group.files])
    logger.info(
        "graphs: %d train in %d group(s), %d valid file(s), built in %.1f s",
        sum(len(gr.graphs) for gr in groups),
        len(groups),
        len(valid_sets),
        time.perf_counter() - t0,
    )
    torch.manual_seed(cfg["seed"])
    model = build_model(mcfg)
    scale_inputs = spec is not None
    if init_state is not None:
        if mcfg.readout_heads > 1:
            init_state = widen_readout(init_state, model, WIDEN_NOISE, cfg["seed"])
        if spec is not None and INPUT_STATE_KEYS[0] not in init_state:
            # an init model without inputs: their weights start at zero (nn/inputs.py)
            own = model.state_dict()
            init_state = {**init_state, **{k: own[k] for k in INPUT_STATE_KEYS}}
        else:
            scale_inputs = False  # the init model's own standardization of its inputs
        model.load_state_dict(init_state)
        logger.info("weights and label standardization from %s", cfg["init"])
    else:
        mean0, std0 = label_stats(groups)
        with torch.no_grad():
            model.label_mean.fill_(mean0)
            model.label_std.fill_(std0)
    if scale_inputs:
        set_input_scale(model, in_mean, in_std)
    opt_cfg = cfg["optim"]
    if cfg["optim"].get("recalibrate_norm", False) and saved is None:
        _recalibrate_batchnorm(model, [g for group in groups for g in group.graphs])
    optim, sched = optimizer(model.parameters(), opt_cfg)
    gen = torch.Generator().manual_seed(cfg["seed"])
    # `model` holds the parameters (checkpoints save its state); `run_model` may be compiled
    step_model = training_view(model)  # a shallow ensemble trains on its heads
    run_model = torch.compile(step_model, dynamic=True) if opt_cfg["compile"] else step_model
    ema_decay = float(opt_cfg.get("ema", 0.0))
    # the model validation sees: the averaged weights (a second, eager copy) or the model
    eval_model = build_model(mcfg) if ema_decay > 0 else model
    ema_state = _copy_state(model) if ema_decay > 0 else None
    history: list[dict[str, Any]] = []
    epoch, best, best_epoch, elapsed = 0, -math.inf, -1, 0.0
    if saved is not None:
        model.load_state_dict(saved["model"])
        if ema_state is not None:
            ema_state = saved["ema"] if saved.get("ema") is not None else _copy_state(model)
        history, epoch, best, best_epoch, elapsed = restore(saved, optim, sched, gen)
        torch.set_rng_state(saved["rng"])
        logger.info("resumed %s at epoch %d (best valid score %.4f)", out, epoch, best)
    dist.broadcast_state(model)  # the same weights everywhere (they are already: same seed)

    mean, std = float(model.label_mean), float(model.label_std)
    n_epochs = opt_cfg["epochs"] if max_epochs is None else min(opt_cfg["epochs"], max_epochs)
    deadline = None
    if opt_cfg["max_minutes"]:
        deadline = time.perf_counter() + 60.0 * float(opt_cfg["max_minutes"]) - elapsed
    bar = None
    if progress and dist.main:
        from tqdm import tqdm

        bar = tqdm(total=n_epochs, initial=epoch, desc="train", unit="epoch", dynamic_ncols=True)
    stop_reason = "epochs"
    noise = float(opt_cfg.get("position_noise", 0.0))
    while epoch < n_epochs:
        if epoch - best_epoch > opt_cfg["patience"] and best_epoch >= 0:
            stop_reason = "early stopping (validation score)"
            break
        # rank 0's clock decides for every process
        if dist.broadcast(deadline is not None and time.perf_counter() > deadline):
            stop_reason = "max_minutes"
            break
        t_epoch = time.perf_counter()
        model.train()
        if opt_cfg.get("freeze_norm", False):
            _freeze_batchnorm(model)
        losses, weights = [], []
        if opt_cfg.get("frames_per_step", 1) > 1 or dist.active:
            losses, weights = _multi_frame_epoch(
                run_model,
                model,
                optim,
                groups,
                gen,
                std,
                noise,
                opt_cfg,
                epoch,
                dist,
                lambda: _ema_update(ema_state, model, ema_decay) if ema_state is not None else None,
            )
        else:  # one optimizer step per frame
            for gi, k in epoch_order(groups, gen):
                g = groups[gi].graphs[k]
                pred = g.run(run_model, _jitter(g, noise, gen))
                loss = _loss(pred, g, std, opt_cfg) * groups[gi].weight
                optim.zero_grad(set_to_none=True)
                loss.backward()
                if opt_cfg["grad_clip"]:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), opt_cfg["grad_clip"])
                optim.step()
                if ema_state is not None:
                    _ema_update(ema_state, model, ema_decay)
                losses.append(loss.detach().item())
                weights.append(groups[gi].weight)
                if not math.isfinite(losses[-1]):
                    raise ValueError(
                        f"training loss became {losses[-1]} on {g.name} at epoch {epoch + 1}; "
                        "lower optim.lr or check the data (the last good weights are in "
                        f"{last_path})"
                    )
        # the eager model: at inference it runs the fused operators, which torch.compile
        # cannot trace
        if ema_state is not None:
            eval_model.load_state_dict(ema_state)
        # rank 0 validates; its metrics (and so every decision taken from them) go to all
        metrics = _validate(eval_model, valid_sets, data["selection"]) if dist.main else None
        metrics = dist.broadcast(metrics)
        score = metrics["score"]
        epoch, elapsed, row = close_epoch(
            epoch, t_epoch, elapsed, metrics, losses, weights, optim, sched
        )
        history.append(row)
        if math.isfinite(score) and score > best:
            best, best_epoch = score, epoch
        if dist.main and best_epoch == epoch:
            info = {"metrics": metrics, "label_mean": mean, "label_std": std, "elapsed": elapsed}
            if spec is not None:  # the file's `node_inputs` metadata (train/export.py)
                info["node_inputs"] = spec.to_json()
            ckpt = run_checkpoint(eval_model.state_dict(), cfg, epoch, hashes, **info)
            atomic_save(ckpt, out / "best.pt")
        if dist.main:
            resume_state = {"optim": optim.state_dict(), "sched": sched.state_dict()}
            resume_state.update(gen=gen.get_state(), rng=torch.get_rng_state(), ema=ema_state)
            resume_state.update(history=history, best=best, best_epoch=best_epoch)
            ckpt = run_checkpoint(
                model.state_dict(),
                cfg,
                epoch,
                hashes,
                elapsed=elapsed,
                world_size=dist.world,
                **resume_state,
            )
            atomic_save(ckpt, last_path)
            _write_csv(out / "metrics.csv", history)
        if bar is not None:
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", r=f"{score:.4f}", best=f"{best:.4f}")
            bar.update(1)
        logger.debug("epoch %d: %s", epoch, row)
    if bar is not None:
        bar.close()
    if best_epoch < 0 and epoch > 0:
        raise ValueError(
            f"no epoch gave a finite validation score (last: {history[-1]['valid_pearson']}); "
            f"no best.pt written in {out}"
        )
    if dist.main:
        _finish(out, valid_sets, data["selection"], stop_reason)
    dist.barrier()  # no process returns before the run folder is complete
    return out


def _multi_frame_epoch(
    run_model: Any,
    model: torch.nn.Module,
    optim: torch.optim.Optimizer,
    groups: list[Any],
    gen: torch.Generator,
    std: float,
    noise: float,
    opt_cfg: dict[str, Any],
    epoch: int,
    dist: Dist,
    after_step: Any,
) -> tuple[list[float], list[float]]:
    """One epoch of optimizer steps over ``optim.frames_per_step`` frames each, the frames of
    a step split between the processes; returns every frame's (weighted) loss and weight in
    epoch order, as the single-frame loop does.

    Every process draws everything every frame needs (the step's per-frame seeds, each
    frame's position noise) in the same order, whichever frames it runs, so a frame's
    gradient does not depend on which process computes it. A step's gradient is the sum of
    its frames' gradients divided by their number.
    """
    fps = int(opt_cfg["frames_per_step"])
    params = [p for p in model.parameters() if p.requires_grad]
    norms = BatchNormReplay(model)
    mine: list[tuple[int, float, float]] = []  # (position in the epoch, loss, weight)
    order = epoch_order(groups, gen)
    for start in range(0, len(order), fps):
        chunk = order[start : start + fps]
        seeds = torch.randint(0, 2**62, (len(chunk),), generator=gen).tolist()
        optim.zero_grad(set_to_none=True)
        norms.begin(len(chunk))
        step_loss = 0.0
        for slot, (gi, k) in enumerate(chunk):
            g = groups[gi].graphs[k]
            edge_vec = _jitter(g, noise, gen)
            if slot % dist.world != dist.rank:
                continue
            torch.manual_seed(seeds[slot])  # the model's own sampling (SymGNN's transforms)
            pred = g.run(run_model, edge_vec)
            loss = _loss(pred, g, std, opt_cfg) * groups[gi].weight
            loss.backward()
            norms.frame(slot)
            value = loss.detach().item()
            mine.append((start + slot, value, groups[gi].weight))
            step_loss += value
        total = dist.sum_gradients(params, torch.tensor([step_loss], dtype=torch.float64))
        norms.finish(dist)
        if not math.isfinite(float(total[0])):
            names = ", ".join(groups[gi].graphs[k].name for gi, k in chunk)
            raise ValueError(
                f"training loss became {float(total[0])} in a step over {names} at epoch "
                f"{epoch + 1}; lower optim.lr or check the data (the last good weights are in "
                "last.pt)"
            )
        for p in params:
            if p.grad is not None:
                p.grad.div_(len(chunk))
        if opt_cfg["grad_clip"]:
            torch.nn.utils.clip_grad_norm_(model.parameters(), opt_cfg["grad_clip"])
        optim.step()
        after_step()
    frames = sorted(r for part in dist.gather(mine) for r in part)
    return [r[1] for r in frames], [r[2] for r in frames]


def _validate(
    model: torch.nn.Module, valid_sets: list[tuple[str, list[Graph]]], selection: str
) -> dict[str, Any]:
    """Pooled metrics per validation file and the selection score."""
    sets, per_file = {}, {}
    for name, graphs in valid_sets:
        m, _ = evaluate_graphs(model, graphs)
        sets[name] = m["pooled"]
        per_file.update(m["per_file"])
    rs = [m["pearson"] for m in sets.values()]
    score = rs[0] if selection == "first" else float(np.mean(rs))
    return {
        "score": score,
        "selection": selection,
        "sets": sets,
        "per_file": per_file,
        "pooled": sets[valid_sets[0][0]],
    }


def _finish(
    out: Path, valid_sets: list[tuple[str, list[Graph]]], selection: str, stop_reason: str
) -> None:
    """Plots and summary from the saved checkpoints."""
    from .plots import learning_curve, parity_plot

    last = load_checkpoint(out / "last.pt")
    history = last["history"]
    summary: dict[str, Any] = {"stop_reason": stop_reason, "epochs": last["epoch"]}
    if (out / "best.pt").exists():
        best = load_checkpoint(out / "best.pt")
        model = build_model(ModelConfig.from_dict(best["config"]["model"]))
        model.load_state_dict(best["model"])
        metrics = _validate(model, valid_sets, selection)
        name, graphs = valid_sets[0]
        _, preds = evaluate_graphs(model, graphs)
        summary.update(best_epoch=best["epoch"], valid=metrics, elapsed_to_best=best["elapsed"])
        parity_plot(
            np.concatenate(preds),
            np.concatenate([g.full_label.numpy() for g in graphs]),
            out / "parity.png",
            title=f"{name}, epoch {best['epoch']}: r = {metrics['sets'][name]['pearson']:.4f}",
        )
    summary["train_seconds"] = last["elapsed"]
    learning_curve(history, out / "learning_curve.png")
    write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    logger.info(
        "run %s finished (%s): %s",
        out,
        stop_reason,
        json.dumps(summary.get("valid", {}).get("sets", {})),
    )
