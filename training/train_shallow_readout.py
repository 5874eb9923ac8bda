"""A shallow ensemble trained on the frozen network of a one-head run: the decoder alone.

    .venv/bin/python training/train_shallow_readout.py --config training/configs/shallow_readout.yaml

The network up to the decoder (embedding, encoder, EGAT layers, batch-norm statistics) is
that of ``init`` (a run folder's best.pt, e.g. training/runs/length = symgnn_length) and stays
as it is, so the relaxed-glass accuracy it was selected for cannot drift. The decoder (three
linear layers, the last one widened to ``readout_heads`` heads plus noise, nn/shallow.py) is
trained on the final node states of the training frames, computed once in inference mode (the
same numbers the exported file computes), with the loss of train/shallow_loss.py (Gaussian
negative log-likelihood of the heads' mean and spread mixed with the mean's squared error).
One optimizer step per frame, frames in a seeded random order each epoch; after each epoch
the validation score is the mean of the pooled Pearsons of the ``valid`` files (the trainer's
``selection: mean``); best.pt holds the best epoch in the trainer's checkpoint format, so
``symgnn export RUN`` / ``train.export.export_run`` exports it as an ensemble file.

Writes into ``run_dir``: config.yaml (a copy), metrics.csv, best.pt, last.pt, summary.json.
Resumable: last.pt holds the decoder, optimizer and generator state.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from symgnn_ase.data.graph import graph_from_atoms
from symgnn_ase.nn.config import ModelConfig
from symgnn_ase.nn.factory import build_model
from symgnn_ase.nn.shallow import widen_readout
from symgnn_ase.outputs import write_text
from symgnn_ase.train.checkpoints import atomic_save, load_checkpoint
from symgnn_ase.train.config import expand_files
from symgnn_ase.train.shallow_loss import frame_loss

KEYS = {"run_dir", "init", "seed", "readout_heads", "widen_noise", "train", "valid", "optim"}
OPTIM = {"lr": 1e-3, "epochs": 200, "patience": 40, "nll_weight": 0.5, "nll_var_floor": 1e-4}


def load(path: Path) -> dict:
    cfg = yaml.safe_load(path.read_text())
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: a YAML mapping is required, got {type(cfg).__name__}")
    unknown = sorted(set(cfg) - KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; known: {sorted(KEYS)}")
    bad_optim = sorted(set(cfg.get("optim") or {}) - set(OPTIM))
    if bad_optim:
        raise ValueError(f"{path}: unknown optim key(s) {bad_optim}; known: {sorted(OPTIM)}")
    cfg["optim"] = OPTIM | dict(cfg.get("optim") or {})
    heads = cfg.get("readout_heads")
    if isinstance(heads, bool) or not isinstance(heads, int) or heads < 2:
        raise ValueError(f"{path}: readout_heads must be an integer >= 2, got {heads!r}")
    return cfg


def node_states(model, files: list[str]) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, final node state [N, F], labels [N]) of every frame of ``files`` (inference)."""
    import ase.io

    out = []
    for f in files:
        for k, atoms in enumerate(ase.io.read(f, index=":")):
            g = graph_from_atoms(atoms, model.r_max, ["Cu", "Zr"], torch.float32)
            with torch.no_grad():  # eval mode: the fused operators, as the exported file
                h, e = model.embed(g.species, g.edge_index, g.edge_vec)
                for layer in range(model.n_layers):
                    h, e = model.interact(layer, h, e, g.edge_index, None)
            y = torch.tensor(atoms.arrays["energy_barrier"], dtype=torch.float32)
            out.append((f"{Path(f).name}[{k}]", h.clone(), y))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config", type=Path, required=True)
    args = p.parse_args(argv)
    cfg = load(args.config)
    torch.set_num_threads(1)
    out = Path(cfg["run_dir"])
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "config.yaml").exists():
        shutil.copyfile(args.config, out / "config.yaml")
    init = Path(cfg["init"])
    ckpt = load_checkpoint(init / "best.pt" if init.is_dir() else init)
    mcfg = ModelConfig.from_dict(dict(ckpt["config"]["model"], readout_heads=cfg["readout_heads"]))
    model = build_model(mcfg)
    model.load_state_dict(widen_readout(ckpt["model"], model, cfg["widen_noise"], cfg["seed"]))
    model.eval()
    model.r_max = mcfg.r_max
    for p_ in model.parameters():
        p_.requires_grad_(False)
    t0 = time.perf_counter()
    train = node_states(model, expand_files(cfg["train"]))
    valid = {f: node_states(model, [f]) for f in expand_files(cfg["valid"])}
    print(
        f"node states: {len(train)} train, {len(valid)} valid files, "
        f"{time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    dec = model.decoder
    for p_ in dec.parameters():
        p_.requires_grad_(True)
    opt_cfg = cfg["optim"]
    optim = torch.optim.Adam(dec.parameters(), lr=opt_cfg["lr"], amsgrad=True)
    gen = torch.Generator().manual_seed(cfg["seed"])
    std, mean = float(model.label_std), float(model.label_mean)
    history, epoch, best, best_epoch = [], 0, -math.inf, -1
    if (out / "last.pt").exists():
        last = load_checkpoint(out / "last.pt")
        model.load_state_dict(last["model"])
        optim.load_state_dict(last["optim"])
        gen.set_state(last["gen"])
        history, epoch = list(last["history"]), last["epoch"]
        best, best_epoch = last["best"], last["best_epoch"]
        print(f"resumed at epoch {epoch} (best {best:.4f})", flush=True)

    def heads(h: torch.Tensor) -> torch.Tensor:
        return (dec(h) * std + mean).T

    while epoch < opt_cfg["epochs"] and epoch - best_epoch <= opt_cfg["patience"]:
        t = time.perf_counter()
        losses = []
        for k in torch.randperm(len(train), generator=gen).tolist():
            _, h, y = train[k]
            loss = frame_loss(heads(h), y, None, std, opt_cfg)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            losses.append(loss.item())
        if not all(math.isfinite(v) for v in losses):
            raise ValueError(f"training loss became non-finite at epoch {epoch + 1}")
        epoch += 1
        row = {"epoch": epoch, "train_loss": float(np.mean(losses))}
        rs = []
        with torch.no_grad():
            for f, frames in valid.items():
                m = torch.cat([heads(h) for _, h, _ in frames], 1)
                y = torch.cat([y for _, _, y in frames])
                mu, s = m.mean(0), m.std(0)
                r = float(np.corrcoef(mu.numpy(), y.numpy())[0, 1])
                rs.append(r)
                row[f"pearson:{Path(f).name}"] = r
                row[f"mean_std:{Path(f).name}"] = float(s.mean())
                row[f"mean_z2:{Path(f).name}"] = float((((mu - y) / s) ** 2).mean())
        row["valid_score"] = float(np.mean(rs))
        row["epoch_seconds"] = time.perf_counter() - t
        history.append(row)
        state = {
            "model": model.state_dict(),
            "config": {"model": mcfg.to_dict(), "optim": opt_cfg, "seed": cfg["seed"]},
            "epoch": epoch,
            "metrics": row,
        }
        if row["valid_score"] > best:
            best, best_epoch = row["valid_score"], epoch
            atomic_save(state, out / "best.pt")
        state |= {
            "optim": optim.state_dict(),
            "gen": gen.get_state(),
            "history": history,
            "best": best,
            "best_epoch": best_epoch,
        }
        atomic_save(state, out / "last.pt")
        with open(out / "metrics.csv.tmp", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(history[0]))
            w.writeheader()
            w.writerows(history)
        Path(out / "metrics.csv.tmp").replace(out / "metrics.csv")
        print(
            json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}),
            flush=True,
        )
    summary = {
        "epochs": epoch,
        "best_epoch": best_epoch,
        "best_score": best,
        "best": history[best_epoch - 1] if best_epoch > 0 else None,
    }
    write_text(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
