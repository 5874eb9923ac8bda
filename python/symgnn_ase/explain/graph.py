"""The graph an explanation works on: the structure's edges and an atom's receptive field."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ExplainGraph", "Subgraph", "build_explain_graph", "extract_subgraph"]


@dataclass
class ExplainGraph:
    """The whole structure's radius graph, with what explanations need beyond the model input."""

    species: np.ndarray  # [N] int64 indices into type_names
    receiver: np.ndarray  # [E] int64 (i)
    sender: np.ndarray  # [E] int64 (j)
    shift: np.ndarray  # [E, 3] int32 (S)
    vec: np.ndarray  # [E, 3] float64: D = r_j - r_i + S.cell
    type_names: list[str]
    r_max: float
    _ptr: np.ndarray = field(init=False, repr=False)  # CSR of incoming edges
    _order: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._order = np.argsort(self.receiver, kind="stable")
        self._ptr = np.searchsorted(self.receiver[self._order], np.arange(self.n_atoms + 1))

    @property
    def n_atoms(self) -> int:
        return int(self.species.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.receiver.shape[0])

    def incoming(self, nodes: np.ndarray) -> np.ndarray:
        """Ids of the edges whose receiver is in ``nodes``."""
        start = self._ptr[nodes]
        count = self._ptr[nodes + 1] - start
        total = int(count.sum())
        if total == 0:
            return np.zeros(0, dtype=np.int64)
        offsets = np.repeat(start - np.cumsum(count) + count, count)
        return self._order[offsets + np.arange(total)]


def build_explain_graph(atoms: Any, r_max: float, type_names: Sequence[str]) -> ExplainGraph:
    """The radius graph of ``atoms`` (an ``ase.Atoms``), keeping shifts and float64 vectors."""
    from ..data.graph import species_indices
    from ..neighborlist import atoms_neighbors

    if len(atoms) == 0:
        raise ValueError("the structure has no atoms")
    species = species_indices(atoms.get_chemical_symbols(), type_names)
    i, j, shift, vec = atoms_neighbors(atoms, r_max)
    return ExplainGraph(
        species=species,
        receiver=np.asarray(i, dtype=np.int64),
        sender=np.asarray(j, dtype=np.int64),
        shift=np.asarray(shift, dtype=np.int32),
        vec=np.asarray(vec, dtype=np.float64),
        type_names=list(type_names),
        r_max=float(r_max),
    )


@dataclass
class Subgraph:
    """An atom's receptive field: local node and edge numbering, hops, unwrapped positions.

    Edges are ordered by the hop of their receiver (ascending), so the edges a
    layer needs are a prefix: ``n_edges_per_layer[l]`` of them for layer ``l``.
    """

    atom: int
    nodes: np.ndarray  # [n] global atom ids; nodes[0] == atom
    node_hop: np.ndarray  # [n]
    edges: np.ndarray  # [e] global edge ids
    local_receiver: np.ndarray  # [e] into nodes
    local_sender: np.ndarray  # [e]
    edge_hop: np.ndarray  # [e] hop of the receiver
    node_pos: np.ndarray  # [n, 3] unwrapped positions relative to the atom (Å)
    midpoint: np.ndarray  # [e, 3] edge midpoints relative to the atom (Å)
    n_edges_per_layer: list[int]

    @property
    def n_nodes(self) -> int:
        return int(self.nodes.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.edges.shape[0])


def extract_subgraph(graph: ExplainGraph, atom: int, n_layers: int) -> Subgraph:
    """Nodes within ``n_layers`` hops of ``atom`` along incoming edges, and the edges into
    nodes within ``n_layers - 1`` hops (all that can change the atom's output)."""
    _check_atom(atom, graph.n_atoms)
    if n_layers < 1:
        raise ValueError(f"n_layers must be >= 1, got {n_layers}")
    hop = np.full(graph.n_atoms, -1, dtype=np.int64)
    pos = np.full((graph.n_atoms, 3), np.nan)
    hop[atom] = 0
    pos[atom] = 0.0
    frontier = np.array([atom], dtype=np.int64)
    edge_parts: list[np.ndarray] = []
    for h in range(n_layers):
        eids = graph.incoming(frontier)  # receivers at hop h
        edge_parts.append(eids)
        senders = graph.sender[eids]
        new = hop[senders] < 0
        # first edge reaching each new node places it (path-consistent periodic image)
        new_nodes, first = np.unique(senders[new], return_index=True)
        hop[new_nodes] = h + 1
        via = eids[new][first]
        pos[new_nodes] = pos[graph.receiver[via]] + graph.vec[via]
        frontier = new_nodes
    edges = np.concatenate(edge_parts) if edge_parts else np.zeros(0, dtype=np.int64)
    nodes = np.flatnonzero(hop >= 0)
    nodes = nodes[np.argsort(hop[nodes], kind="stable")]  # the atom (hop 0) first
    local = np.full(graph.n_atoms, -1, dtype=np.int64)
    local[nodes] = np.arange(nodes.shape[0])
    recv = graph.receiver[edges]
    edge_hop = hop[recv]
    counts = [int(np.sum(edge_hop <= n_layers - 1 - layer)) for layer in range(n_layers)]
    midpoint = pos[recv] + 0.5 * graph.vec[edges]
    return Subgraph(
        atom=int(atom),
        nodes=nodes,
        node_hop=hop[nodes],
        edges=edges,
        local_receiver=local[recv],
        local_sender=local[graph.sender[edges]],
        edge_hop=edge_hop,
        node_pos=pos[nodes],
        midpoint=midpoint,
        n_edges_per_layer=counts,
    )


def _check_atom(atom: Any, n_atoms: int) -> int:
    if isinstance(atom, bool) or not isinstance(atom, (int, np.integer)):
        raise ValueError(f"atom index must be an integer, got {atom!r}")
    if not 0 <= int(atom) < n_atoms:
        raise ValueError(
            f"atom index {int(atom)} is out of range: the structure has {n_atoms} atoms "
            f"(valid indices 0 to {n_atoms - 1})"
        )
    return int(atom)
