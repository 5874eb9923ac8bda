"""From a training run to an exported model file: the eager model of a checkpoint, and its
export with the run's provenance as metadata (``info``)."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from ..compose.load import model_from_checkpoint
from ..compose.residual import export_residual
from ..export import export_model
from ..format import ENSEMBLE_SIZE_KEY, NODE_INPUTS_KEY
from ..outputs import check_output
from .datasets import run_baseline

logger = logging.getLogger(__name__)

__all__ = ["model_from_checkpoint", "export_run"]


def export_run(
    checkpoint: str | os.PathLike,
    output: str | os.PathLike,
    transforms: int | None = None,
    seed_override: int | None = None,
    std_scale: float | None = None,
) -> Path:
    """Export a run folder (its best.pt) or a checkpoint to TorchScript; returns the file.

    ``transforms`` (SymGNN only) fixes that many transforms per distribution for
    inference (default: the training config's ``n_samples_eval``), drawn with
    ``seed_override`` (default: the config's ``sample_seed``). A run trained with
    ``data.baseline`` is exported with its baseline, as one model that sums them
    (:func:`symgnn_ase.compose.residual.export_residual`). A shallow ensemble
    (``readout_heads`` > 1) is written as an ensemble file (metadata ``ensemble_size``) with
    its spread times ``std_scale`` (default: the checkpoint's, 1 unless calibrated).
    """
    source = Path(checkpoint)
    if source.is_dir():
        source = source / "best.pt"
    check_output(output, [source, checkpoint], what="export output")
    model, ckpt = model_from_checkpoint(source)
    cfg = ckpt["config"]
    mcfg = cfg["model"]
    baseline = run_baseline(cfg)
    if baseline:
        if transforms is not None:
            raise ValueError("--transforms is not available for a run trained with data.baseline")
        logger.info("%s learned the residual of %s: exporting their sum", source, baseline)
        return export_residual(baseline, [source], output)
    if transforms is not None:
        if mcfg["kind"] != "symgnn":
            raise ValueError(
                f"--transforms applies to kind 'symgnn' only, this is {mcfg['kind']!r}"
            )
        seed = mcfg["sample_seed"] if seed_override is None else seed_override
        model.encoder.set_eval_samples(transforms, seed)
        mcfg = dict(mcfg, n_samples_eval=transforms, sample_seed=seed)
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
    metadata = {}
    heads = int(getattr(model, "ensemble_size", 1))
    if heads > 1:
        if std_scale is not None:
            if not (math.isfinite(std_scale) and std_scale > 0):
                raise ValueError(f"std_scale must be a finite number > 0, got {std_scale}")
            model.std_scale.fill_(float(std_scale))
        info |= {"ensemble_size": heads, "std_scale": float(model.std_scale)}
        metadata[ENSEMBLE_SIZE_KEY] = str(heads)
    elif std_scale is not None:
        raise ValueError(
            f"std_scale applies to a shallow ensemble (readout_heads > 1), got {source}"
        )
    if ckpt.get("node_inputs"):  # a ridge fit with model.node_inputs: names, potential, stats
        metadata[NODE_INPUTS_KEY] = ckpt["node_inputs"]
    path = export_model(
        model,
        output,
        mcfg["type_names"],
        mcfg["r_max"],
        info=info,
        inputs=[source],
        metadata=metadata,
    )
    return path
