"""``symgnn export RUN_OR_CHECKPOINT -o model.pt``: a trained run to a TorchScript file."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch

from ._export import export_model
from ._factory import build_model
from ._model import ModelConfig
from ._train import load_checkpoint

logger = logging.getLogger(__name__)

__all__ = ["register", "run", "model_from_checkpoint"]


def model_from_checkpoint(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The eager model of a run folder (its best.pt) or of a checkpoint file."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    ckpt = load_checkpoint(path)
    if "model" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{path} is not a symgnn training checkpoint (no model/config entries)")
    model = build_model(ModelConfig.from_dict(ckpt["config"]["model"]))
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained run to a TorchScript model file",
        description="Export a run folder (its best.pt) or a checkpoint to TorchScript with "
        "the metadata of SPEC §4 (cutoff, layers, species, feature width, training info).",
    )
    p.add_argument("checkpoint", help="run folder or .pt checkpoint")
    p.add_argument("-o", "--output", required=True, help="model file to write")
    p.add_argument(
        "--transforms",
        type=int,
        default=None,
        help="SymGNN only: number of fixed transforms per distribution used at inference "
        "(default: the training config's n_samples_eval)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed for --transforms")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model, ckpt = model_from_checkpoint(args.checkpoint)
    cfg = ckpt["config"]
    mcfg = cfg["model"]
    if args.transforms is not None:
        if mcfg["kind"] != "symgnn":
            raise ValueError(
                f"--transforms applies to kind 'symgnn' only, this is {mcfg['kind']!r}"
            )
        seed = mcfg["sample_seed"] if args.seed is None else args.seed
        model.encoder.set_eval_samples(args.transforms, seed)
        mcfg = dict(mcfg, n_samples_eval=args.transforms, sample_seed=seed)
    info = {
        "kind": mcfg["kind"],
        "model": mcfg,
        "optim": cfg.get("optim"),
        "seed": cfg.get("seed"),
        "epoch": ckpt.get("epoch"),
        "train_seconds_to_best": ckpt.get("elapsed"),
        "training_data_sha256": ckpt.get("data_sha256"),
        "validation": ckpt.get("metrics"),
        "n_parameters": sum(p.numel() for p in model.parameters()),
    }
    path = export_model(model, args.output, mcfg["type_names"], mcfg["r_max"], info=info)
    print(f"wrote {path}")
    return 0
