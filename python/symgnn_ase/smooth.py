"""Spatial smoothing behind a trained barrier model (``symgnn smooth``).

:func:`export_smoothed` writes one TorchScript file that predicts with ``base`` and replaces
each atom's prediction by its distance-weighted average with its neighbours' (weight
``exp(-r / L)`` times a cutoff that reaches 0 at the model's ``r_max``,
:mod:`symgnn_ase.nn.smooth`), inside the model: the calculator, ``symgnn predict`` and the
LAMMPS compute run it like any model. An ensemble base keeps its per-atom standard deviation
(over the smoothed members).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["build_smoothed", "export_smoothed"]


def _std_scale(module) -> float:
    """The ``std_scale`` of an ensemble module (``std_scale`` itself or a wrapped base's)."""
    found = [float(b) for name, b in module.named_buffers() if name.split(".")[-1] == "std_scale"]
    if len(set(found)) != 1:
        raise ValueError(
            f"cannot tell the ensemble's std_scale: {len(found)} std_scale buffers {found}"
        )
    return found[0]


def build_smoothed(base: str | os.PathLike, length: float, cutoff: str = "cosine"):
    """(the eager smoothed model, the loaded base). ``length`` is L in Å; the weight's cutoff
    radius is the base's ``r_max``."""
    from .ensemble import layer_widths
    from .export import load_model, wrapped_kinds
    from .nn.smooth import Smoothed, SmoothedEnsemble, check_length

    check_length(length)
    loaded = load_model(base)
    if loaded.node_inputs is not None:
        raise ValueError(
            f"{loaded.path} takes per-atom inputs {list(loaded.node_inputs.names)} from the "
            "potential (metadata node_inputs): it cannot be wrapped (smoothed); use it on its own"
        )
    if "smoothed" in wrapped_kinds(loaded.info):
        logger.warning(
            "%s is already smoothed (kinds %s): its predictions will be averaged twice",
            loaded.path,
            " > ".join(wrapped_kinds(loaded.info)),
        )
    layer_widths(loaded.module, loaded.n_layers, loaded.dtype, f"model {loaded.path}")
    args = (loaded.module, loaded.n_layers, loaded.feature_dim, float(length), loaded.r_max)
    if loaded.ensemble_size > 1:
        model = SmoothedEnsemble(
            *args,
            cutoff,
            ensemble_size=loaded.ensemble_size,
            std_scale=_std_scale(loaded.module),
        )
    else:
        model = Smoothed(*args, cutoff)
    return model.eval(), loaded


def export_smoothed(
    base: str | os.PathLike,
    output: str | os.PathLike,
    length: float,
    cutoff: str = "cosine",
) -> Path:
    """Write ``base`` with its predictions smoothed over length ``length`` (Å) to ``output``."""
    from .export import export_wrapper
    from .nn.smooth import check_length
    from .outputs import check_output

    check_length(length)
    check_output(output, [base], what="smoothed model output")
    model, loaded = build_smoothed(base, length, cutoff)
    info: dict[str, Any] = {
        "kind": "smoothed",
        "smooth": {
            "length": float(length),
            "cutoff": cutoff,
            "r_cut": float(loaded.r_max),
            "weight": "exp(-r/length) * cutoff(r), 0 from r_cut on; self weight 1",
        },
    }
    ensemble_info = None
    if loaded.ensemble_size > 1:  # the std of the smoothed members
        ensemble_info = {
            "std": "sample standard deviation over the smoothed members (K - 1), times std_scale",
            "std_scale": float(model.std_scale),
        }
    path = export_wrapper(model, output, base, loaded, info, ensemble_info)
    logger.info("exported %s smoothed over L = %g Å to %s", base, length, path)
    return path
