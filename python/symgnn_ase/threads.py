"""Moved to :mod:`symgnn_ase.runtime` (issue 26); kept only until train/loop.py imports it
from there, then removed."""

from .runtime import torch_threads

__all__ = ["torch_threads"]
