"""Batch-norm statistics of a finished run recomputed over all its training frames.

    .venv/bin/python training/studies/recalibrate_norm.py training/runs/length_md_bn [-o best_recal.pt]

During training the running statistics of the batch-norm layers are an exponential average over
the last few frames (momentum 0.1), in the epoch's random order of relaxed and thermal frames, so
the checkpoint's statistics lean toward whichever frames came last. This recomputes them as the
plain average over every training frame of the run's config (relaxed and thermal alike), writes
the checkpoint with those statistics next to best.pt (the weights are unchanged), and prints the
pooled Pearson of every validation file before and after. Export the result with
``symgnn export RUN/best_recal.pt -o model.pt``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from symgnn_ase.compose.load import model_from_checkpoint
from symgnn_ase.nn.config import ModelConfig
from symgnn_ase.train.checkpoints import atomic_save
from symgnn_ase.train.datasets import load_train_groups, load_valid_sets
from symgnn_ase.train.evaluate import evaluate_graphs
from symgnn_ase.train.steps import recalibrate_batchnorm as _recalibrate_batchnorm


def _scores(model: torch.nn.Module, valid) -> dict[str, float]:
    out = {}
    for name, graphs in valid:
        metrics, _ = evaluate_graphs(model, graphs)
        out[name] = round(float(metrics["pooled"]["pearson"]), 4)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="run folder (its best.pt is read)")
    ap.add_argument("-o", "--output", default="best_recal.pt", help="file name inside the run")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    model, ckpt = model_from_checkpoint(args.run / "best.pt")
    cfg = ckpt["config"]
    mcfg = ModelConfig.from_dict(cfg["model"])
    groups = load_train_groups(cfg["data"], mcfg)
    valid = load_valid_sets(cfg["data"], mcfg)
    before = _scores(model, valid)
    print("before:", before, flush=True)
    graphs = [g for group in groups for g in group.graphs]
    _recalibrate_batchnorm(model, graphs)
    model.eval()
    after = _scores(model, valid)
    print("after: ", after, flush=True)
    ckpt = dict(ckpt, model=model.state_dict(), recalibrated_norm={"frames": len(graphs)})
    ckpt["metrics"] = dict(ckpt.get("metrics") or {}, recalibrated=after, before=before)
    atomic_save(ckpt, args.run / args.output)
    print(f"wrote {args.run / args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
