"""Explanations as tables: the ranked edges of one atom (CSV), importance against distance."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..outputs import atomic_output
from .graph import ExplainGraph

if TYPE_CHECKING:
    from .core import Explanation

__all__ = ["EDGE_COLUMNS", "write_edges_csv", "importance_vs_distance"]


EDGE_COLUMNS = (
    "rank",
    "i",
    "j",
    "sx",
    "sy",
    "sz",
    "species_i",
    "species_j",
    "hop",
    "distance",
    "edge_length",
    "importance",
)


def write_edges_csv(expl: Explanation, graph: ExplainGraph, path: str | os.PathLike) -> Path:
    """All subgraph edges, most important first: receiver ``i``, sender ``j``, shift, species,
    ``hop`` of the receiver, ``distance`` of the edge midpoint from the atom (Å),
    ``edge_length`` (Å) and ``importance`` (mask value in [0, 1])."""
    path = Path(path)
    sub = expl.subgraph
    names = graph.type_names
    with atomic_output(path, "w", newline="") as fd:
        writer = csv.writer(fd)
        writer.writerow(EDGE_COLUMNS)
        for rank, k in enumerate(expl.order, start=1):
            eid = sub.edges[k]
            i = int(graph.receiver[eid])
            j = int(graph.sender[eid])
            s = graph.shift[eid]
            writer.writerow(
                [
                    rank,
                    i,
                    j,
                    int(s[0]),
                    int(s[1]),
                    int(s[2]),
                    names[int(graph.species[i])],
                    names[int(graph.species[j])],
                    int(sub.edge_hop[k]),
                    f"{expl.distance[k]:.4f}",
                    f"{expl.edge_length[k]:.4f}",
                    f"{expl.importance[k]:.6g}",
                ]
            )
    return path


def importance_vs_distance(
    explanations: Sequence[Explanation], bin_width: float = 1.0
) -> dict[str, Any]:
    """The medium-range-order statistic over many explained atoms.

    Per distance bin (edge midpoint distance from the atom): the mean importance
    of the edges in the bin, averaged over atoms (each atom counts once; standard
    error over atoms), the share of each atom's top-K edges that falls in the bin,
    the share of all subgraph edges in the bin, and their ratio (enrichment > 1:
    top-K edges are over-represented at that distance). The same per receiver hop.
    """
    if bin_width <= 0 or not math.isfinite(bin_width):
        raise ValueError(f"bin_width must be a finite number > 0, got {bin_width}")
    usable = [x for x in explanations if x.subgraph.n_edges]
    if not usable:
        raise ValueError("no explanation with edges to aggregate")
    max_d = max(float(x.distance.max()) for x in usable)
    n_bins = max(1, int(math.ceil(max_d / bin_width + 1e-9)))
    edges = np.arange(n_bins + 1) * bin_width

    def table(keys: list[np.ndarray], n: int) -> dict[str, list[float]]:
        means = np.full((len(usable), n), np.nan)
        top_share = np.zeros((len(usable), n))
        all_share = np.zeros((len(usable), n))
        for a, (x, key) in enumerate(zip(usable, keys, strict=True)):
            count = np.bincount(key, minlength=n)
            total = np.bincount(key, weights=x.importance, minlength=n)
            ok = count > 0
            means[a, ok] = total[ok] / count[ok]
            top = x.order[: x.top_k]
            top_share[a] = np.bincount(key[top], minlength=n) / max(len(top), 1)
            all_share[a] = count / count.sum()
        n_atoms = np.sum(~np.isnan(means), axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.nanmean(np.where(n_atoms > 0, means, 0.0), axis=0)
            mean = np.where(n_atoms > 0, mean, np.nan)
            sq = np.nansum((means - mean) ** 2, axis=0)
            sem = np.where(n_atoms > 1, np.sqrt(sq / np.maximum(n_atoms - 1, 1) / n_atoms), np.nan)
            top_mean = top_share.mean(0)
            all_mean = all_share.mean(0)
            enrich = np.where(all_mean > 0, top_mean / all_mean, np.nan)
        return {
            "n_atoms": n_atoms.astype(int).tolist(),
            "mean_importance": mean.tolist(),
            "sem_importance": sem.tolist(),
            "top_k_share": top_mean.tolist(),
            "edge_share": all_mean.tolist(),
            "enrichment": enrich.tolist(),
        }

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)  # all-NaN bins
        by_distance = table(
            [np.minimum((x.distance / bin_width).astype(np.int64), n_bins - 1) for x in usable],
            n_bins,
        )
        n_hops = max(int(x.subgraph.edge_hop.max()) for x in usable) + 1
        by_hop = table([x.subgraph.edge_hop.astype(np.int64) for x in usable], n_hops)
    return {
        "n_atoms": len(usable),
        "bin_width_A": bin_width,
        "distance_bins_A": edges.tolist(),
        "by_distance": by_distance,
        "hops": list(range(n_hops)),
        "by_hop": by_hop,
    }
