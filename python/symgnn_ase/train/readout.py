"""Train the readout alone on a frozen body: a training config with ``freeze: body``.

    symgnn train examples/train/default_shallow_readout_k2.yaml

The network up to the decoder (embedding, encoder, interaction layers, batch-norm statistics) is
that of ``init`` (a run folder's best.pt, a checkpoint or an exported file, e.g.
training/runs/length = symgnn_length) and stays as it is, so the accuracy it was selected for
cannot drift. The config's ``model`` section is the init model's, except ``readout_heads``: an
init with one head is widened to that many heads plus noise (:func:`~symgnn_ase.nn.shallow.
widen_readout`, as ``symgnn train`` does). The decoder is trained on the final node states of
every frame, computed once in inference mode (the numbers the exported file computes), with the
trainer's loss (:func:`~.shallow_loss.frame_loss`: squared error, or for several heads the
Gaussian negative log-likelihood of their mean and spread mixed with the mean's squared error).

One optimizer step per frame, the frames of each epoch in the trainer's seeded order
(:func:`~.datasets.epoch_order`: group weights and ``frames_per_epoch`` as in training), Adam
with the trainer's ``optim`` settings (``lr``, ``amsgrad``, ``weight_decay``, ``grad_clip``, the
plateau schedule ``lr_factor``/``lr_patience``/``min_lr``, ``epochs``, ``patience``,
``max_minutes``, ``nll_weight``, ``nll_var_floor``); the settings that act on the body's
forward pass (``position_noise``, ``ema``, ``recalibrate_norm``, ``frames_per_step``,
``compile``) are refused. The validation score is the trainer's (``data.selection`` over the
pooled Pearsons of ``data.valid``, the heads' mean).

The run folder is a training run's (``symgnn export RUN`` exports it; ``--resume`` continues
it): config copy, git_commit.txt, metrics.csv, best.pt, last.pt, summary.json,
learning_curve.png, parity.png.
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
from torch import Tensor

from ..nn.config import ModelConfig
from ..nn.factory import build_model
from ..nn.shallow import WIDEN_NOISE, widen_readout
from ..outputs import write_text
from ..runtime import torch_threads
from .checkpoints import atomic_save, load_checkpoint
from .config import OPTIM_DEFAULTS, check_run_dir, load_config, optimizer
from .datasets import data_hashes, epoch_order, load_init, load_train_groups, load_valid_sets
from .metrics import regression_metrics
from .resume import (
    close_epoch,
    git_commit,
    restore,
    resume_config,
    run_checkpoint,
    single_head,
    write_csv,
)
from .shallow_loss import frame_loss

logger = logging.getLogger(__name__)

__all__ = ["WIDEN_NOISE", "fit_readout", "node_states"]

#: optim settings that act on the body's forward pass: only their defaults are accepted
_BODY_OPTIM = ("position_noise", "ema", "recalibrate_norm", "frames_per_step", "compile")

# (name, node states [N, F], labels [N]) of one frame
Frame = tuple[str, Tensor, Tensor]


def _check(cfg: dict[str, Any], path: str | os.PathLike) -> None:
    """What a frozen body cannot do, refused before any work."""
    set_ = [k for k in _BODY_OPTIM if cfg["optim"][k] != OPTIM_DEFAULTS[k]]
    if set_:
        raise ValueError(
            f"{path}: freeze: body trains the decoder on node states computed once; "
            f"optim.{set_[0]} acts on the body's forward pass (leave it at its default, "
            f"{OPTIM_DEFAULTS[set_[0]]!r})"
        )
    if cfg["data"]["baseline"] is not None:
        raise ValueError(f"{path}: freeze: body learns the labels themselves (no data.baseline)")
    if cfg["data"]["node_inputs_potential"] is not None:
        raise ValueError(f"{path}: freeze: body takes no data.node_inputs_potential")


def _body(cfg: dict[str, Any], path: str | os.PathLike) -> tuple[dict[str, Any], Any]:
    """The model section (the init model's, readout_heads as configured) and the init state
    widened to it."""
    state, init_model = load_init(cfg["init"])
    model = cfg["model"]
    if model is None:
        model = ModelConfig.from_dict(init_model).to_dict()
    elif ModelConfig.from_dict(init_model).to_dict() != single_head(model, init_model):
        raise ValueError(
            f"{path}: freeze: body keeps the network of init {cfg['init']}: the `model` section "
            "must be its configuration (readout_heads may widen one head); leave `model` out "
            "to keep its heads"
        )
    if model.get("node_inputs"):
        raise ValueError(f"{path}: freeze: body takes no model.node_inputs")
    if model["kind"] == "ridge":
        raise ValueError(f"{path}: the ridge kind is fitted in closed form (leave out `freeze`)")
    return model, state


def _heads(model: torch.nn.Module) -> Any:
    """Node states [N, F] to every head's barrier [M, N] (eV): the decoder's M heads of a
    shallow ensemble, or the model's readout as one head."""
    if int(getattr(model, "ensemble_size", 1)) > 1:
        std, mean = float(model.label_std), float(model.label_mean)
        return lambda h: (model.decoder(h) * std + mean).T
    return lambda h: model.readout(h)[None]


def node_states(model: torch.nn.Module, graphs: list[Any]) -> list[Frame]:
    """The final node state of every graph (inference mode: the fused operators, as the
    exported file) with its labels."""
    out = []
    for g in graphs:
        with torch.no_grad():
            h, e = model.embed(g.species, g.edge_index, g.edge_vec)
            for layer in range(model.n_layers):
                h, e = model.interact(layer, h, e, g.edge_index, None)
        out.append((g.name, h.clone(), g.label))
    return out


def fit_readout(
    config_path: str | os.PathLike,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    allow_changes: bool = False,
    max_epochs: int | None = None,
) -> Path:
    """Train the decoder of a ``freeze: body`` config; returns the run folder (module doc)."""
    cfg = load_config(config_path)
    if cfg["freeze"] != "body":
        raise ValueError(f"{config_path}: fit_readout needs `freeze: body`, got {cfg['freeze']!r}")
    if run_dir is not None:
        cfg["run_dir"] = str(run_dir)
    _check(cfg, config_path)
    out = Path(cfg["run_dir"])
    last_path = out / "last.pt"
    hashes = data_hashes(cfg["data"])
    saved, state = None, None
    if resume:
        if not last_path.exists():
            raise FileNotFoundError(f"--resume: no checkpoint {last_path} to continue from")
        saved = load_checkpoint(last_path)
        cfg = resume_config(saved, cfg, hashes, allow_changes)
    else:
        if last_path.exists():
            raise ValueError(
                f"run folder {out} already holds a run; pass --resume to continue it or choose "
                "another run_dir"
            )
        check_run_dir(config_path, out)
        cfg["model"], state = _body(cfg, config_path)
    if not resume:
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(config_path, out / ("config" + Path(config_path).suffix))
        write_text(out / "git_commit.txt", git_commit() + "\n")
    with torch_threads(cfg["threads"]):
        return _run(cfg, out, state, saved, hashes, max_epochs)


def _validate(heads: Any, valid: list[tuple[str, list[Frame]]], selection: str) -> dict[str, Any]:
    """The trainer's validation metrics of the heads' mean, with the heads' spread per set
    (``mean_std``: mean over atoms; ``mean_z2``: mean squared error over spread squared)."""
    sets, per_file = {}, {}
    with torch.no_grad():
        for name, frames in valid:
            m = torch.cat([heads(h) for _, h, _ in frames], 1)
            y = torch.cat([y for _, _, y in frames])
            mu = m.mean(0)
            sets[name] = regression_metrics(mu.numpy(), y.numpy())
            if m.shape[0] > 1:
                s = m.std(0)
                keep = torch.isfinite(y)
                sets[name]["mean_std"] = float(s.mean())
                sets[name]["mean_z2"] = float((((mu - y) / s)[keep] ** 2).mean())
            for fname, h, yf in frames:
                per_file[fname] = regression_metrics(heads(h).mean(0).numpy(), yf.numpy())
    rs = [m["pearson"] for m in sets.values()]
    score = rs[0] if selection == "first" else float(np.mean(rs))
    first = valid[0][0]
    return {
        "score": score,
        "selection": selection,
        "sets": sets,
        "per_file": per_file,
        "pooled": sets[first],
    }


def _run(
    cfg: dict[str, Any],
    out: Path,
    state: dict[str, Tensor] | None,
    saved: dict[str, Any] | None,
    hashes: dict[str, str],
    max_epochs: int | None,
) -> Path:
    mcfg = ModelConfig.from_dict(cfg["model"])
    torch.manual_seed(cfg["seed"])
    model = build_model(mcfg)
    if saved is not None:
        model.load_state_dict(saved["model"])
    else:
        if mcfg.readout_heads > 1:
            state = widen_readout(state, model, WIDEN_NOISE, cfg["seed"])
        model.load_state_dict(state)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    t0 = time.perf_counter()
    data = cfg["data"]
    groups = load_train_groups(data, mcfg)
    valid_graphs = load_valid_sets(data, mcfg)
    train = [node_states(model, group.graphs) for group in groups]
    valid = [(name, node_states(model, graphs)) for name, graphs in valid_graphs]
    t_states = time.perf_counter() - t0
    logger.info(
        "node states: %d train frames in %d group(s), %d valid file(s), %.0f s",
        sum(len(f) for f in train),
        len(train),
        len(valid),
        t_states,
    )
    dec = model.decoder
    std = float(model.label_std)
    for p in dec.parameters():
        p.requires_grad_(True)
    opt = cfg["optim"]
    optim, sched = optimizer(dec.parameters(), opt)  # the trainer's, for the decoder
    gen = torch.Generator().manual_seed(cfg["seed"])
    heads = _heads(model)
    history: list[dict[str, Any]] = []
    epoch, best, best_epoch, elapsed = 0, -math.inf, -1, 0.0
    if saved is not None:
        history, epoch, best, best_epoch, elapsed = restore(saved, optim, sched, gen)
        logger.info("resumed %s at epoch %d (best valid score %.4f)", out, epoch, best)

    n_epochs = opt["epochs"] if max_epochs is None else min(opt["epochs"], max_epochs)
    deadline = None
    if opt["max_minutes"]:
        deadline = time.perf_counter() + 60.0 * float(opt["max_minutes"]) - elapsed
    stop_reason = "epochs"
    while epoch < n_epochs:
        if epoch - best_epoch > opt["patience"] and best_epoch >= 0:
            stop_reason = "early stopping (validation score)"
            break
        if deadline is not None and time.perf_counter() > deadline:
            stop_reason = "max_minutes"
            break
        t_epoch = time.perf_counter()
        losses, weights = [], []
        for gi, k in epoch_order(groups, gen):
            name, h, y = train[gi][k]
            mask = torch.isfinite(y)
            pred = heads(h)
            pred = pred[0] if pred.shape[0] == 1 else pred  # one head: the squared error
            loss = frame_loss(pred, y, None if bool(mask.all()) else mask, std, opt)
            loss = loss * groups[gi].weight
            optim.zero_grad(set_to_none=True)
            loss.backward()
            if opt["grad_clip"]:
                torch.nn.utils.clip_grad_norm_(dec.parameters(), opt["grad_clip"])
            optim.step()
            losses.append(loss.item())
            weights.append(groups[gi].weight)
            if not math.isfinite(losses[-1]):
                raise ValueError(
                    f"training loss became {losses[-1]} on {name} at epoch {epoch + 1}; lower "
                    f"optim.lr or check the data (the last good weights are in {out / 'last.pt'})"
                )
        metrics = _validate(heads, valid, data["selection"])
        score = metrics["score"]
        epoch, elapsed, row = close_epoch(
            epoch, t_epoch, elapsed, metrics, losses, weights, optim, sched
        )
        history.append(row)
        info = {"label_mean": float(model.label_mean), "label_std": std, "elapsed": elapsed}
        if math.isfinite(score) and score > best:
            best, best_epoch = score, epoch
            ckpt = run_checkpoint(model.state_dict(), cfg, epoch, hashes, metrics=metrics, **info)
            atomic_save(ckpt, out / "best.pt")
        resume_state = {"optim": optim.state_dict(), "sched": sched.state_dict()}
        resume_state.update(gen=gen.get_state(), history=history, best=best, best_epoch=best_epoch)
        ckpt = run_checkpoint(model.state_dict(), cfg, epoch, hashes, **info, **resume_state)
        atomic_save(ckpt, out / "last.pt")
        write_csv(out / "metrics.csv", history)
        logger.info("epoch %d: %s", epoch, json.dumps(history[-1]))
    if best_epoch < 0 and epoch > 0:
        raise ValueError(
            f"no epoch gave a finite validation score (last: {history[-1]['valid_pearson']}); "
            f"no best.pt written in {out}"
        )
    _finish(out, valid, data["selection"], stop_reason, t_states)
    return out


def _finish(
    out: Path,
    valid: list[tuple[str, list[Frame]]],
    selection: str,
    stop_reason: str,
    t_states: float,
) -> None:
    """summary.json and the plots, from the saved checkpoints (as a training run's)."""
    from .plots import learning_curve, parity_plot

    last = load_checkpoint(out / "last.pt")
    best = load_checkpoint(out / "best.pt")
    model = build_model(ModelConfig.from_dict(best["config"]["model"]))
    model.load_state_dict(best["model"])
    heads = _heads(model.eval())
    metrics = _validate(heads, valid, selection)
    name, frames = valid[0]
    with torch.no_grad():
        pred = torch.cat([heads(h).mean(0) for _, h, _ in frames]).numpy()
    parity_plot(
        pred,
        torch.cat([y for _, _, y in frames]).numpy(),
        out / "parity.png",
        title=f"{name}, epoch {best['epoch']}: r = {metrics['sets'][name]['pearson']:.4f}",
    )
    learning_curve(last["history"], out / "learning_curve.png")
    summary = {
        "stop_reason": stop_reason,
        "freeze": "body",
        "epochs": last["epoch"],
        "best_epoch": best["epoch"],
        "valid": metrics,
        "elapsed_to_best": best["elapsed"],
        "train_seconds": last["elapsed"],
        "node_state_seconds": t_states,
    }
    write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    logger.info("run %s finished (%s): %s", out, stop_reason, json.dumps(metrics["sets"]))
