"""The fused CPU inference operators (``symgnn::egat_edges``, ``symgnn::painn_message``).

They live in ``libsymgnn_ops.so``, built with the package next to its compiled
``_core`` module (and linked by the LAMMPS plugin). Models built while the
library is loaded use the operators for inference (eval mode, gradients off,
CPU float32) and plain PyTorch otherwise; a model exported that way needs the
library at load time, which :func:`symgnn_ase.load_model` takes care of.
"""

from __future__ import annotations

import logging
import os

import torch

from ..lammps import built_file

logger = logging.getLogger(__name__)

__all__ = ["ops_library_path", "fused_ops_available", "fused_ops_disabled"]

LIBRARY_NAME = "libsymgnn_ops.so"
_loaded: bool | None = None


def ops_library_path() -> str | None:
    """Absolute path of ``libsymgnn_ops.so``, or None if it was not built."""
    return built_file(LIBRARY_NAME)


def fused_ops_disabled() -> bool:
    """True when ``SYMGNN_DISABLE_FUSED=1`` keeps the operators from being loaded."""
    return os.environ.get("SYMGNN_DISABLE_FUSED", "") == "1"


def fused_ops_available() -> bool:
    """Load the operator library once; True when the fused operators are registered."""
    global _loaded
    if _loaded is None:
        if fused_ops_disabled():
            _loaded = False
            return _loaded
        path = ops_library_path()
        if path is None:
            logger.info("%s not found: models run on plain PyTorch ops", LIBRARY_NAME)
            _loaded = False
        else:
            torch.ops.load_library(path)
            _loaded = True
    return _loaded
