"""Reading labelled structures into graphs, with content hashes for provenance."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence

import torch

from ._graph import Graph, graph_from_atoms

logger = logging.getLogger(__name__)

__all__ = ["file_sha256", "read_structures", "load_graphs"]


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_structures(path: str | os.PathLike) -> list:
    """All frames of a structure file ``ase.io.read`` understands."""
    import ase.io

    if not os.path.exists(path):
        raise FileNotFoundError(f"structure file not found: {path}")
    frames = ase.io.read(path, index=":")
    if not isinstance(frames, list):
        frames = [frames]
    if not frames:
        raise ValueError(f"no structures in {path}")
    return frames


def load_graphs(
    paths: Sequence[str | os.PathLike],
    r_max: float,
    type_names: Sequence[str],
    label_key: str | None = "energy_barrier",
    dtype: torch.dtype = torch.float32,
) -> list[Graph]:
    """One graph per frame of every file; names are ``file`` or ``file@frame``."""
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
