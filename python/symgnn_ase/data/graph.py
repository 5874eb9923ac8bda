"""From atoms to the model's graph: species indices, edges and edge vectors."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

logger = logging.getLogger(__name__)

__all__ = ["Graph", "species_indices", "graph_from_atoms", "load_graphs"]


@dataclass
class Graph:
    """One structure as model input (and, optionally, its per-atom labels)."""

    species: Tensor  # [N] int64, indices into type_names
    edge_index: Tensor  # [2, E] int64: row 0 sender j, row 1 receiver i
    edge_vec: Tensor  # [E, 3] r_j - r_i + S.cell, in the model dtype
    label: Tensor | None = None  # [N] float32, eV
    name: str = ""
    # [N] float32, eV: a baseline model's prediction that ``label`` has had subtracted
    # (training with ``data.baseline``: the network learns the rest; label + baseline is the
    # barrier)
    baseline: Tensor | None = None
    # [N, n] float64: per-atom inputs from the potential of a model with ``model.node_inputs``
    # (training: train/node_inputs.py); passed as the model's 5th argument
    node_inputs: Tensor | None = None

    def run(self, model, edge_vec: Tensor | None = None) -> Tensor:
        """``model`` on this graph (``edge_vec``: the graph's own, or e.g. a jittered copy),
        with the node inputs when the graph carries them."""
        vec = self.edge_vec if edge_vec is None else edge_vec
        if self.node_inputs is not None:
            return model(self.species, self.edge_index, vec, None, self.node_inputs)
        return model(self.species, self.edge_index, vec)

    @property
    def n_atoms(self) -> int:
        return int(self.species.shape[0])

    @property
    def full_label(self) -> Tensor | None:
        """The barrier label: ``label``, plus ``baseline`` where one was subtracted."""
        if self.label is None or self.baseline is None:
            return self.label
        return self.label + self.baseline

    @property
    def label_mask(self) -> Tensor | None:
        """Atoms with a finite label, or None when every atom has one (or there are none)."""
        if self.label is None:
            return None
        mask = torch.isfinite(self.label)
        return None if bool(mask.all()) else mask


def species_indices(symbols: Sequence[str], type_names: Sequence[str]) -> np.ndarray:
    """Map chemical symbols to indices of ``type_names``; unknown ones are an error."""
    lookup = {name: k for k, name in enumerate(type_names)}
    out = np.empty(len(symbols), dtype=np.int64)
    for n, sym in enumerate(symbols):
        k = lookup.get(sym)
        if k is None:
            raise ValueError(
                f"atom {n} is `{sym}`, which is not in the model's type_names "
                f"[{', '.join(type_names)}]"
            )
        out[n] = k
    return out


def graph_from_atoms(
    atoms,
    r_max: float,
    type_names: Sequence[str],
    dtype: torch.dtype = torch.float32,
    label_key: str | None = None,
) -> Graph:
    """Build the radius graph of ``atoms`` (an ``ase.Atoms``) with the project's neighbor list.

    Edge vectors are formed in float64 and only then cast to ``dtype``.
    """
    from ..neighborlist import atoms_neighbors

    if len(atoms) == 0:
        raise ValueError("the structure has no atoms")
    species = species_indices(atoms.get_chemical_symbols(), type_names)
    i, j, _shifts, vec = atoms_neighbors(atoms, r_max)
    edge_index = torch.from_numpy(np.stack([j, i]).astype(np.int64, copy=False))
    label = None
    if label_key is not None:
        if label_key not in atoms.arrays:
            raise ValueError(
                f"per-atom array `{label_key}` not found; arrays present: {sorted(atoms.arrays)}"
            )
        label = torch.from_numpy(np.asarray(atoms.arrays[label_key], dtype=np.float32).copy())
    return Graph(
        species=torch.from_numpy(species),
        edge_index=edge_index,
        edge_vec=torch.from_numpy(vec).to(dtype),
        label=label,
    )


def load_graphs(
    paths: Sequence[str | os.PathLike],
    r_max: float,
    type_names: Sequence[str],
    label_key: str | None = "energy_barrier",
    dtype: torch.dtype = torch.float32,
) -> list[Graph]:
    """One graph per frame of every file; names are ``file`` or ``file@frame``."""
    from .io import read_structures

    graphs = []
    for path in paths:
        frames = read_structures(path)
        base = os.path.basename(str(path))
        for k, atoms in enumerate(frames):
            g = graph_from_atoms(atoms, r_max, type_names, dtype=dtype, label_key=label_key)
            g.name = base if len(frames) == 1 else f"{base}@{k}"
            graphs.append(g)
            logger.debug("%s: %d atoms, %d edges", g.name, g.n_atoms, g.edge_index.shape[1])
    return graphs
