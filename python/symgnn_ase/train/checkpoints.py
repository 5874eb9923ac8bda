"""Checkpoints: written atomically (a kill never leaves a half-written file), read on CPU."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..outputs import atomic_path

__all__ = ["atomic_save", "load_checkpoint"]


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through :func:`symgnn_ase.outputs.atomic_path` (unique temporary file,
    fsync, atomic rename; a non-regular target is refused)."""
    with atomic_path(path, what="checkpoint") as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint written by :func:`atomic_save`; anything else is a ValueError naming it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise ValueError(f"checkpoint {path} is a directory, not a checkpoint file")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a symgnn training checkpoint (not a torch.save archive); give a run "
            "folder or its best.pt / last.pt"
        )
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        raise ValueError(
            f"{path} is an exported (TorchScript) model, not a training checkpoint; give a run "
            "folder or its best.pt / last.pt"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises KeyError, RuntimeError, UnpicklingError, ...
        raise ValueError(
            f"{path} is not a readable symgnn training checkpoint: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(ckpt, dict):
        raise ValueError(
            f"{path} is not a symgnn training checkpoint: it holds a {type(ckpt).__name__}, "
            "not a dict"
        )
    return ckpt
