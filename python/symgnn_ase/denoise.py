"""Thermal denoising in front of a trained barrier model (``symgnn denoise``, issue 12).

:func:`export_denoised` writes one TorchScript file that moves the atoms of each input by
``n_steps`` steps of ``alpha * F`` (``F`` from a trained :class:`~symgnn_ase.nn.denoise.ForceNet`,
``training/train_denoiser.py``) and predicts with ``base`` on the moved positions, inside the
model: the calculator, ``symgnn predict`` and the LAMMPS compute run it like any model, and
the user's positions are never touched. An ensemble base keeps its per-atom standard deviation.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["build_denoised", "export_denoised", "load_force_net"]


def load_force_net(run: str | os.PathLike):
    """(the :class:`~symgnn_ase.nn.denoise.ForceNet` of a ``train_denoiser.py`` run folder,
    its ``config.json`` with the epoch and validation of ``best.pt``)."""
    from .nn.denoise import ForceNet
    from .train.checkpoints import load_checkpoint

    folder = Path(run)
    cfg_path, best = folder / "config.json", folder / "best.pt"
    for path in (cfg_path, best):
        if not path.is_file():
            raise FileNotFoundError(
                f"force-net run {folder}: {path.name} not found (a folder written by "
                "training/train_denoiser.py)"
            )
    cfg = json.loads(cfg_path.read_text())
    net = ForceNet(
        len(cfg["type_names"]), cfg["r_max"], cfg["channels"], cfg["n_rbf"], cfg["blocks"]
    )
    ckpt = load_checkpoint(best)
    net.load_state_dict(ckpt["model"])
    meta = dict(cfg, epoch=int(ckpt["epoch"]), valid_r2=float(ckpt["valid"]["pooled"]))
    return net.eval(), meta


def build_denoised(
    base: str | os.PathLike,
    force_net: str | os.PathLike,
    alpha: float,
    n_steps: int = 1,
    max_step: float = 0.3,
):
    """(the eager denoised model, the loaded base, the force net's metadata)."""
    from .ensemble import layer_widths
    from .export import load_model, wrapped_kinds
    from .nn.denoise import Denoised, DenoisedEnsemble

    loaded = load_model(base)
    if "denoised" in wrapped_kinds(loaded.info):
        logger.warning(
            "%s is already behind a thermal denoiser (kinds %s): its atoms will be moved twice",
            loaded.path,
            " > ".join(wrapped_kinds(loaded.info)),
        )
    layer_widths(loaded.module, loaded.n_layers, loaded.dtype, f"model {loaded.path}")
    net, meta = load_force_net(force_net)
    if list(meta["type_names"]) != list(loaded.type_names):
        raise ValueError(
            f"the force net's species [{', '.join(meta['type_names'])}] differ from the base "
            f"model's [{', '.join(loaded.type_names)}]"
        )
    if float(meta["r_max"]) != float(loaded.r_max):
        raise ValueError(
            f"the force net's r_max {meta['r_max']:g} Å differs from the base model's "
            f"{loaded.r_max:g} Å (the model has one neighbor list)"
        )
    net = net.to(loaded.dtype)
    args = (net, loaded.module, loaded.n_layers, loaded.feature_dim, alpha)
    if loaded.ensemble_size > 1:
        model = DenoisedEnsemble(*args, max_step, n_steps, ensemble_size=loaded.ensemble_size)
    else:
        model = Denoised(*args, max_step, n_steps)
    return model.eval(), loaded, meta


def export_denoised(
    base: str | os.PathLike,
    force_net: str | os.PathLike,
    output: str | os.PathLike,
    alpha: float,
    n_steps: int = 1,
    max_step: float = 0.3,
) -> Path:
    """Write ``base`` behind the denoiser of ``force_net`` to ``output``."""
    from .export import export_wrapper
    from .outputs import check_output

    check_output(output, [base, force_net], what="denoised model output")
    model, loaded, meta = build_denoised(base, force_net, alpha, n_steps, max_step)
    info: dict[str, Any] = {
        "kind": "denoised",
        "denoise": {
            "alpha": float(alpha),
            "n_steps": int(n_steps),
            "max_step": float(max_step),
            "force_net": meta,
        },
    }
    path = export_wrapper(model, output, base, loaded, info, inputs=[force_net])
    logger.info("exported %s behind the thermal denoiser to %s", base, path)
    return path
