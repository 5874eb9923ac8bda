"""Pictures of explanations (PNG; matplotlib ``Figure`` objects, no pyplot state or
backend switch): the paper's figures 2-3 and the
importance-against-distance statistic. Positions are unwrapped around the explained
atom (see :mod:`symgnn_ase._explain`), in Å relative to it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..outputs import save_figure
from .core import Explanation
from .graph import ExplainGraph

__all__ = ["global_view", "local_view", "importance_distance_plot"]

_SPECIES_COLORS = ["#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e"]
_CMAP = "viridis"


def _edge_ends(expl: Explanation, graph: ExplainGraph) -> tuple[np.ndarray, np.ndarray]:
    """Receiver and sender positions of every subgraph edge (sender = receiver + D)."""
    sub = expl.subgraph
    recv = sub.node_pos[sub.local_receiver]
    send = recv + graph.vec[sub.edges]
    return recv, send


def _species_legend(ax: Any, graph: ExplainGraph, present: np.ndarray) -> None:
    for k in np.unique(present):
        ax.scatter([], [], [], s=40, color=_SPECIES_COLORS[k % 5], label=graph.type_names[k])


def _equal_box(ax: Any, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    center = 0.5 * (points.max(0) + points.min(0))
    half = 0.5 * float(np.max(points.max(0) - points.min(0))) + 0.5
    for setter, c in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), center, strict=True):
        setter(c - half, c + half)
    ax.set_box_aspect((1, 1, 1))
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    ax.set_zlabel("z (Å)")
    return center - half, center + half


def _fidelity_text(expl: Explanation) -> str:
    f = expl.fidelity
    k = expl.top_k
    return (
        f"prediction {expl.prediction:.3f} eV | only top-{k} kept: {f['keep_top_k_eV']:.3f} eV "
        f"(|Δ| {f['keep_error_eV']:.3f}; {k} nearest: {f['keep_nearest_error_eV']:.3f}, "
        f"random: {f['keep_random_error_eV']:.3f})\n"
        f"top-{k} removed: {f['remove_top_k_eV']:.3f} eV (|Δ| {f['remove_change_eV']:.3f}; "
        f"{k} nearest: {f['remove_nearest_change_eV']:.3f}, "
        f"random: {f['remove_random_change_eV']:.3f})"
    )


def global_view(
    expl: Explanation, graph: ExplainGraph, path: str | os.PathLike, top: int = 50
) -> Path:
    """The ``top`` most important edges in 3-D, coloured by importance (paper's figure 2)."""
    from matplotlib import cm, colormaps, colors
    from matplotlib.figure import Figure

    sub = expl.subgraph
    fig = Figure(figsize=(8.5, 8))
    ax = fig.add_subplot(projection="3d")
    sel = expl.order[: min(top, sub.n_edges)]
    recv, send = _edge_ends(expl, graph)
    points = [np.zeros((1, 3))]
    if len(sel):
        imp = expl.importance[sel]
        norm = colors.Normalize(vmin=float(imp.min()), vmax=float(max(imp.max(), imp.min() + 1e-9)))
        cmap = colormaps[_CMAP]
        for k in sel[::-1]:  # most important drawn last (on top)
            seg = np.stack([send[k], recv[k]])
            ax.plot(*seg.T, color=cmap(norm(expl.importance[k])), lw=2.2, alpha=0.95)
        ends = np.concatenate([recv[sel], send[sel]])
        ids = np.concatenate([sub.local_receiver[sel], sub.local_sender[sel]])
        spec = graph.species[sub.nodes[ids]]
        ax.scatter(
            *ends.T,
            s=28,
            c=[_SPECIES_COLORS[s % 5] for s in spec],
            edgecolors="k",
            linewidths=0.3,
            depthshade=False,
        )
        _species_legend(ax, graph, spec)
        points.append(ends)
        sm = cm.ScalarMappable(norm=norm, cmap=cmap)
        fig.colorbar(sm, ax=ax, shrink=0.6, pad=0.08, label="edge importance (mask)")
    ax.scatter(0, 0, 0, s=260, marker="*", color="red", edgecolors="k", label="explained atom")
    ax.legend(loc="upper left", fontsize=9)
    lo, hi = _equal_box(ax, np.concatenate(points))
    # the other atoms of the receptive field inside the drawn box, faint (3-D axes do not clip)
    inside = np.all((sub.node_pos > lo) & (sub.node_pos < hi), axis=1)
    ax.scatter(*sub.node_pos[inside].T, s=3, color="0.5", alpha=0.15, depthshade=False)
    ax.set_title(
        f"atom {expl.atom} ({expl.species}): top {len(sel)} of {sub.n_edges} edges "
        f"(receptive field: {sub.n_nodes} atoms)",
        fontsize=11,
    )
    fig.text(0.02, 0.02, _fidelity_text(expl), fontsize=8, family="monospace")
    path = Path(path)
    save_figure(fig, path, dpi=110, bbox_inches="tight")
    return path


def local_view(
    expl: Explanation, graph: ExplainGraph, path: str | os.PathLike, n_nearest: int = 10
) -> Path:
    """The explained atom, its ``n_nearest`` nearest atoms and every edge among them; edges
    in the top-K drawn solid and coloured by importance, the others thin and dashed
    (paper's figure 3). One line per atom pair: the larger importance of its two directions."""
    from matplotlib import cm, colormaps, colors
    from matplotlib.figure import Figure

    sub = expl.subgraph
    dist = np.linalg.norm(sub.node_pos, axis=1)
    near = np.argsort(dist, kind="stable")[: n_nearest + 1]  # the atom itself is first
    in_set = np.zeros(sub.n_nodes, dtype=bool)
    in_set[near] = True
    recv, send = _edge_ends(expl, graph)
    ok = in_set[sub.local_receiver] & in_set[sub.local_sender]
    # only edges between the drawn images (a small box may hold other images of a pair)
    ok &= np.linalg.norm(send - sub.node_pos[sub.local_sender], axis=1) < 1e-6
    top = np.zeros(sub.n_edges, dtype=bool)
    top[expl.order[: expl.top_k]] = True
    pairs: dict[tuple[int, int], tuple[float, bool]] = {}
    for k in np.flatnonzero(ok):
        a, b = int(sub.local_receiver[k]), int(sub.local_sender[k])
        key = (min(a, b), max(a, b))
        imp, is_top = pairs.get(key, (0.0, False))
        pairs[key] = (max(imp, float(expl.importance[k])), is_top or bool(top[k]))
    fig = Figure(figsize=(8.5, 8))
    ax = fig.add_subplot(projection="3d")
    vmax = float(expl.importance.max()) if sub.n_edges else 1.0
    norm = colors.Normalize(vmin=0.0, vmax=max(vmax, 1e-9))
    cmap = colormaps[_CMAP]
    for (a, b), (imp, is_top) in sorted(pairs.items(), key=lambda kv: kv[1][0]):
        seg = sub.node_pos[[a, b]]
        if is_top:
            ax.plot(*seg.T, color=cmap(norm(imp)), lw=3.5)
        else:
            ax.plot(*seg.T, color="0.55", lw=0.8, ls="--", alpha=0.7)
    spec = graph.species[sub.nodes[near]]
    ax.scatter(
        *sub.node_pos[near[1:]].T,
        s=120,
        c=[_SPECIES_COLORS[s % 5] for s in spec[1:]],
        edgecolors="k",
        depthshade=False,
    )
    ax.scatter(0, 0, 0, s=320, marker="*", color="red", edgecolors="k", label="explained atom")
    for n in near:
        ax.text(*(sub.node_pos[n] + 0.15), str(int(sub.nodes[n])), fontsize=8)
    _species_legend(ax, graph, spec)
    ax.plot([], [], color=cmap(0.8), lw=3.5, label=f"in top {expl.top_k}")
    ax.plot([], [], color="0.55", lw=0.8, ls="--", label="other edges")
    ax.legend(loc="upper left", fontsize=9)
    fig.colorbar(
        cm.ScalarMappable(norm=norm, cmap=cmap),
        ax=ax,
        shrink=0.6,
        pad=0.08,
        label="edge importance (max of both directions)",
    )
    _equal_box(ax, sub.node_pos[near])
    n_top = sum(1 for _, t in pairs.values() if t)
    ax.set_title(
        f"atom {expl.atom} ({expl.species}) and its {len(near) - 1} nearest atoms: "
        f"{n_top} of {len(pairs)} pairs in the top {expl.top_k}",
        fontsize=11,
    )
    path = Path(path)
    save_figure(fig, path, dpi=110, bbox_inches="tight")
    return path


def importance_distance_plot(stats: dict[str, Any], path: str | os.PathLike) -> Path:
    """Mean edge importance and top-K enrichment against the edge's distance from the
    explained atom, and mean importance per hop (output of ``importance_vs_distance``)."""
    from matplotlib.figure import Figure

    bins = np.asarray(stats["distance_bins_A"])
    centers = 0.5 * (bins[1:] + bins[:-1])
    d = stats["by_distance"]
    mean = np.asarray(d["mean_importance"], dtype=float)
    sem = np.nan_to_num(np.asarray(d["sem_importance"], dtype=float))
    fig = Figure(figsize=(15, 4.4), layout="constrained")
    ax = fig.subplots(1, 3)
    share = ax[0].twinx()
    share.bar(centers, d["edge_share"], width=0.9 * (bins[1] - bins[0]), color="0.85", zorder=0)
    share.set_ylabel("share of receptive-field edges", color="0.5")
    ax[0].set_zorder(share.get_zorder() + 1)
    ax[0].patch.set_visible(False)
    ax[0].errorbar(centers, mean, yerr=sem, marker="o", ms=4, capsize=2, color="C0")
    ax[0].set_xlabel("edge midpoint distance from the explained atom (Å)")
    ax[0].set_ylabel("mean edge importance (± s.e. over atoms)")
    ax[0].set_title(f"importance vs distance ({stats['n_atoms']} atoms)")
    enrich = np.asarray(d["enrichment"], dtype=float)
    enrich = np.where(enrich > 0, enrich, np.nan)  # no top-K edge in the bin: not drawn
    ax[1].plot(centers, enrich, marker="o", ms=4, color="C1")
    ax[1].axhline(1.0, color="k", lw=0.8, ls="--")
    ax[1].set_xlabel("edge midpoint distance from the explained atom (Å)")
    ax[1].set_ylabel("top-K share / edge share")
    ax[1].set_title("top-K enrichment (>1: over-represented)")
    ax[1].set_yscale("log", nonpositive="mask")
    h = stats["by_hop"]
    hops = np.asarray(stats["hops"])
    ax[2].bar(
        hops,
        np.asarray(h["mean_importance"], dtype=float),
        yerr=np.nan_to_num(np.asarray(h["sem_importance"], dtype=float)),
        color="C2",
        capsize=3,
    )
    ax[2].set_xticks(hops)
    ax[2].set_xlabel("hop of the edge's receiver (0: edges into the atom)")
    ax[2].set_ylabel("mean edge importance")
    ax[2].set_title("importance per hop")
    path = Path(path)
    save_figure(fig, path, dpi=110)
    return path
