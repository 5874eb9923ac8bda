"""Explanations: edge weights in the models, receptive-field subgraphs, a planted signal,
fidelity numbers, the CLI and its errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms

from symgnn_ase.cli import main
from symgnn_ase.data.graph import graph_from_atoms
from symgnn_ase.explain.core import (
    ExplainConfig,
    Explainer,
    _Runner,
    build_explain_graph,
    extract_subgraph,
    importance_vs_distance,
)
from symgnn_ase.export import export_model, load_model
from symgnn_ase.nn import build_model
from symgnn_ase.testing import random_glass, tiny_config

KINDS = ["symgnn", "raw", "length", "equivariant"]
TYPES = ["Cu", "Zr"]


def _tiny(kind: str, path: Path | None = None, **overrides) -> torch.nn.Module:
    """A tiny model whose output visibly depends on geometry (large label_std), exported
    to ``path`` when given."""
    torch.manual_seed(0)
    cfg = tiny_config(kind, **overrides)
    model = build_model(cfg).eval()
    with torch.no_grad():
        model.label_mean.fill_(1.6)
        model.label_std.fill_(50.0)
    if path is not None:
        export_model(model, path, cfg.type_names, cfg.r_max, info={"kind": kind, "test": True})
    return model


@pytest.fixture(scope="module")
def small_glass() -> Atoms:
    return random_glass(60, seed=5)


@pytest.fixture(scope="module")
def big_glass() -> Atoms:
    """A rattled Cu-Zr lattice (864 atoms, made instantly), large enough (box 23.4 Å) that
    a 2-layer receptive field (radius 10 Å) is a strict subset with unique images."""
    from ase.build import bulk

    rng = np.random.default_rng(2)
    atoms = bulk("Cu", "fcc", a=3.9, cubic=True).repeat(6)
    atoms.positions += rng.normal(0.0, 0.25, atoms.positions.shape)
    atoms.set_chemical_symbols(np.where(rng.random(len(atoms)) < 0.36, "Zr", "Cu").tolist())
    return atoms


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "tiny.pt"
    _tiny("symgnn", path)
    return path


class Planted(torch.nn.Module):
    """Two layers that only see the edges with length in (lo, hi) Å:
    h_j = sum_{k->j planted} w, out_i = sum_{j->i planted} w (1 + h_j).
    For atom a the edges that matter are exactly the planted edges into a and the planted
    edges into the senders of those."""

    def __init__(self, lo: float = 2.5, hi: float = 3.2) -> None:
        super().__init__()
        self.lo = lo
        self.hi = hi

    def planted(self, edge_vec: torch.Tensor) -> torch.Tensor:
        r = torch.linalg.vector_norm(edge_vec, dim=1)
        return ((r > self.lo) & (r < self.hi)).to(edge_vec.dtype)

    def forward(self, species, edge_index, edge_vec, edge_weight=None):
        c = self.planted(edge_vec)
        if edge_weight is not None:
            c = c * edge_weight
        src, dst = edge_index[0], edge_index[1]
        n = species.shape[0]
        h = torch.zeros(n, dtype=edge_vec.dtype).index_add(0, dst, c)
        return torch.zeros(n, dtype=edge_vec.dtype).index_add(0, dst, c * (1 + h[src]))


class NonLocal(torch.nn.Module):
    """Adds the mean edge length of the whole graph: breaks the n_layers-hop locality."""

    def forward(self, species, edge_index, edge_vec, edge_weight=None):
        r = torch.linalg.vector_norm(edge_vec, dim=1)
        return torch.zeros(species.shape[0], dtype=edge_vec.dtype) + r.mean()


# ---------------------------------------------------------------- edge weights in the models


@pytest.mark.parametrize("kind", KINDS)
def test_edge_weight_ones_is_identity_in_eager_and_exported_models(kind, small_glass, tmp_path):
    eager = _tiny(kind, tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    g = graph_from_atoms(small_glass, 5.0, TYPES)
    ones = torch.ones(g.edge_index.shape[1])
    with torch.no_grad():
        for model in (eager, loaded.module):
            ref = model(g.species, g.edge_index, g.edge_vec)
            assert torch.equal(model(g.species, g.edge_index, g.edge_vec, ones), ref)
            assert torch.equal(model(g.species, g.edge_index, g.edge_vec, None), ref)
            # the weight is used: switching every edge off changes the prediction
            off = model(g.species, g.edge_index, g.edge_vec, torch.zeros_like(ones))
            assert (off - ref).abs().max() > 1e-3
        # the staged methods of the exported file take the weight too
        h, e = loaded.module.embed(g.species, g.edge_index, g.edge_vec)
        h1, e1 = h, e
        for layer in range(loaded.n_layers):
            h, e = loaded.module.interact(layer, h, e, g.edge_index)
            h1, e1 = loaded.module.interact(layer, h1, e1, g.edge_index, ones)
        assert torch.equal(h1, h) and torch.equal(e1, e)
        torch.testing.assert_close(loaded.module.readout(h), ref, atol=1e-6, rtol=0)


# ---------------------------------------------------------------- receptive-field subgraphs


@pytest.mark.parametrize("kind", ["symgnn", "equivariant"])
def test_subgraph_prediction_equals_full_graph(kind, big_glass, small_glass, tmp_path):
    two_layer = {"n_layers": 2} | ({"heads": [2, 2]} if kind == "symgnn" else {})
    cases = [(big_glass, two_layer), (small_glass, {})]  # strict subset; whole box, 3-4 layers
    for case, (atoms, overrides) in enumerate(cases):
        _tiny(kind, tmp_path / f"m{case}.pt", **overrides)
        loaded = load_model(tmp_path / f"m{case}.pt")
        graph = build_explain_graph(atoms, loaded.r_max, loaded.type_names)
        g = graph_from_atoms(atoms, loaded.r_max, loaded.type_names)
        with torch.no_grad():
            full = loaded.module(g.species, g.edge_index, g.edge_vec)
        for atom in (0, 17, len(atoms) - 1):
            sub = extract_subgraph(graph, atom, loaded.n_layers)
            assert sub.nodes[0] == atom and sub.n_edges_per_layer[0] == sub.n_edges
            assert sub.n_edges_per_layer == sorted(sub.n_edges_per_layer, reverse=True)
            if case == 0:
                assert sub.n_nodes < len(atoms)
            runner = _Runner(loaded.module, loaded.n_layers, sub, graph, torch.float32, "cpu")
            assert runner.staged
            w = torch.rand(sub.n_edges, generator=torch.Generator().manual_seed(atom))
            with torch.no_grad():
                # the subgraph renumbers atoms and sums the same edges in another order:
                # float32 round-off, a few ULP of the value (untrained outputs reach ~7 eV)
                torch.testing.assert_close(runner(None), full[atom], atol=5e-7, rtol=1e-6)
                # layer-wise edge pruning gives what the whole subgraph gives, weights too
                whole = loaded.module(
                    species := runner.species, runner.edge_index, runner.edge_vec, w
                )
                assert species[0] == g.species[atom]
                torch.testing.assert_close(runner(w), whole[0], atol=5e-7, rtol=1e-6)


def test_subgraph_edges_are_the_ones_that_can_matter(big_glass):
    graph = build_explain_graph(big_glass, 5.0, TYPES)
    sub = extract_subgraph(graph, 11, 2)
    # edges into the atom and into its neighbors, nothing else
    first = graph.sender[graph.receiver == 11]
    want = np.flatnonzero(np.isin(graph.receiver, np.concatenate([[11], first])))
    assert sorted(sub.edges.tolist()) == sorted(want.tolist())
    assert set(sub.edge_hop.tolist()) == {0, 1}
    assert sub.n_edges_per_layer == [want.size, int((graph.receiver == 11).sum())]


def test_positions_are_unwrapped_around_the_atom(big_glass):
    atoms = big_glass.copy()
    atoms.wrap()
    corner = int(np.argmin(np.linalg.norm(atoms.get_scaled_positions(), axis=1)))
    graph = build_explain_graph(atoms, 5.0, TYPES)
    sub = extract_subgraph(graph, corner, 2)
    dist = np.linalg.norm(sub.node_pos, axis=1)
    assert dist[0] == 0.0
    assert np.all(dist[sub.node_hop == 1] < 5.0)
    assert np.all(dist <= 5.0 * sub.node_hop + 1e-9)
    # the atom sits in a corner, so its neighbors lie on both sides of it
    assert (sub.node_pos[sub.node_hop == 1] < 0).any(axis=0).all()
    # every edge is drawn between the placed images (box > twice the field's radius)
    send = sub.node_pos[sub.local_receiver] + graph.vec[sub.edges]
    np.testing.assert_allclose(send, sub.node_pos[sub.local_sender], atol=1e-9)
    mid = np.linalg.norm(sub.midpoint, axis=1)
    np.testing.assert_allclose(
        mid[sub.edge_hop == 0],
        0.5 * np.linalg.norm(graph.vec[sub.edges][sub.edge_hop == 0], axis=1),
    )


# ---------------------------------------------------------------- validity: a planted signal


def test_planted_edges_are_ranked_first_with_fidelity(big_glass):
    model = Planted()
    explainer = Explainer(
        model, big_glass, r_max=5.0, n_layers=2, type_names=TYPES, dtype=torch.float64
    )
    seen = 0
    for atom in (0, 1, 2):
        expl = explainer.explain(atom)
        sub = expl.subgraph
        planted = (expl.edge_length > model.lo) & (expl.edge_length < model.hi)
        into_atom = planted & (sub.edge_hop == 0)
        truth = into_atom | (
            planted & (sub.edge_hop == 1) & np.isin(sub.local_receiver, sub.local_sender[into_atom])
        )
        k = int(truth.sum())
        if k == 0:
            continue
        seen += 1
        assert truth[expl.order[:k]].all(), f"atom {atom}: planted edges not ranked first"
        assert expl.importance[truth].min() > 0.9 > 0.1 > expl.importance[~truth].max()
        if seen > 1:
            continue
        # fidelity with K = the planted set: keeping it reproduces, removing it zeroes
        kk = explainer.explain(atom, ExplainConfig(top_k=k))
        f = kk.fidelity
        assert f["keep_error_eV"] < 1e-9
        assert abs(f["remove_top_k_eV"]) < 1e-9 and f["remove_change_eV"] == pytest.approx(
            kk.prediction
        )
        assert f["keep_random_error_eV"] > 0.5
    assert seen >= 2


def test_non_local_model_is_rejected(small_glass):
    explainer = Explainer(NonLocal(), small_glass, r_max=2.6, n_layers=1, type_names=TYPES)
    with pytest.raises(RuntimeError, match="not local within n_layers"):
        explainer.explain(0)


def test_explanations_are_seeded(tiny_path, small_glass):
    loaded = load_model(tiny_path)
    explainer = Explainer.from_model(loaded, small_glass, ExplainConfig(epochs=4))
    a = explainer.explain(7)
    b = explainer.explain(7)
    c = explainer.explain(7, ExplainConfig(epochs=4, seed=1))
    assert np.array_equal(a.importance, b.importance)
    assert not np.array_equal(a.importance, c.importance)
    assert a.subgraph_prediction == pytest.approx(a.prediction, abs=1e-4)
    assert set(a.fidelity) >= {"keep_top_k_eV", "remove_top_k_eV", "keep_error_eV"}


def test_importance_vs_distance_statistic(big_glass):
    explainer = Explainer(
        Planted(), big_glass, r_max=5.0, n_layers=2, type_names=TYPES, dtype=torch.float64
    )
    expls = [explainer.explain(a, ExplainConfig(top_k=5)) for a in (0, 1)]
    stats = importance_vs_distance(expls, bin_width=2.0)
    d = stats["by_distance"]
    assert stats["n_atoms"] == 2 and stats["hops"] == [0, 1]
    assert len(d["mean_importance"]) == len(stats["distance_bins_A"]) - 1
    assert sum(d["edge_share"]) == pytest.approx(1.0)
    assert sum(d["top_k_share"]) == pytest.approx(1.0)
    # planted edges are short and near the atom: enriched in the first bins
    assert d["enrichment"][1] > 1.0
    with pytest.raises(ValueError, match="bin_width"):
        importance_vs_distance(expls, bin_width=0.0)
    with pytest.raises(ValueError, match="no explanation"):
        importance_vs_distance([])


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 0}, "epochs"),
        ({"lr": 0.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"size_weight": -1.0}, "size_weight"),
        ({"entropy_weight": float("inf")}, "entropy_weight"),
        ({"top_k": 0}, "top_k"),
        ({"scale": "std"}, "scale must be one of"),
    ],
)
def test_bad_config_is_a_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ExplainConfig(**kwargs)


def test_atom_out_of_range_names_index_and_count(small_glass):
    graph = build_explain_graph(small_glass, 5.0, TYPES)
    with pytest.raises(ValueError, match=r"atom index 60 is out of range: .* 60 atoms"):
        extract_subgraph(graph, 60, 2)
    with pytest.raises(ValueError, match="atom index -1 is out of range"):
        extract_subgraph(graph, -1, 2)
    with pytest.raises(ValueError, match="n_layers"):
        extract_subgraph(graph, 0, 0)


def test_model_without_edge_weight_is_a_clear_error(small_glass):
    class Old(torch.nn.Module):
        def forward(self, species, edge_index, edge_vec):
            return edge_vec.sum() + torch.zeros(species.shape[0])

    with pytest.raises(ValueError, match="does not take per-edge weights"):
        Explainer(Old(), small_glass, r_max=5.0, n_layers=1, type_names=TYPES)


def test_isolated_atom_has_an_empty_explanation(tiny_path):
    atoms = Atoms("CuCuZr", positions=[[0, 0, 0], [2.5, 0, 0], [20, 0, 0]], pbc=False)
    explainer = Explainer.from_model(load_model(tiny_path), atoms, ExplainConfig(epochs=5))
    expl = explainer.explain(2)
    assert expl.subgraph.n_edges == 0 and expl.top_k == 0
    assert expl.fidelity["keep_error_eV"] == 0.0
    assert explainer.explain(0).subgraph.n_edges == 2
    with pytest.raises(ValueError, match="no pair of atoms closer than r_max"):
        Explainer.from_model(load_model(tiny_path), atoms[[0, 2]])


# ---------------------------------------------------------------- command line


def test_cli_writes_csv_json_and_pictures(tiny_path, small_glass, tmp_path, capsys):
    structure = tmp_path / "glass.extxyz"
    ase.io.write(structure, small_glass)
    out = tmp_path / "out"
    rc = main(
        ["explain", "--model", str(tiny_path), str(structure), "--atom", "3", "--top", "10"]
        + ["--sample", "1", "--epochs", "3", "--seed", "4", "-o", str(out)]
    )
    assert rc == 0
    assert "atom 3 (" in capsys.readouterr().out
    names = {p.name for p in out.iterdir()}
    assert names == {
        "atom3_edges.csv",
        "atom3_global.png",
        "atom3_local.png",
        "importance_vs_distance.csv",
        "importance_vs_distance.png",
        "summary.json",
    }
    for png in out.glob("*.png"):
        assert png.read_bytes()[:4] == b"\x89PNG"
    with open(out / "atom3_edges.csv") as fd:
        rows = list(csv.DictReader(fd))
    assert list(rows[0]) == [
        "rank", "i", "j", "sx", "sy", "sz", "species_i", "species_j",
        "hop", "distance", "edge_length", "importance",
    ]  # fmt: skip
    imp = [float(r["importance"]) for r in rows]
    assert imp == sorted(imp, reverse=True) and all(0 <= x <= 1 for x in imp)
    assert all(0 < float(r["edge_length"]) < 5.0 for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["epochs"] == 3 and summary["settings"]["top_k"] == 10
    assert summary["settings"]["seed"] == 4 and summary["settings"]["sample"] == 1
    assert summary["structure"]["n_atoms"] == 60
    ex = summary["explanations"]
    assert [e["sampled"] for e in ex] == [False, True] and ex[0]["atom"] == 3
    assert ex[0]["subgraph_prediction_eV"] == pytest.approx(ex[0]["prediction_eV"], abs=1e-4)
    assert ex[0]["fidelity"]["keep_top_k_eV"] is not None
    assert summary["importance_vs_distance"]["n_atoms"] == 2
    assert summary["time_s"]["per_atom_mean"] > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.extxyz", "--atom", "0"], "structure file not found: missing.extxyz"),
        (["{s}", "--atom", "60"], "--atom 60 is out of range: .* has 60 atoms"),
        (["{s}", "--atom", "-2"], "--atom -2 is out of range"),
        (["{s}"], "nothing to explain"),
        (["{s}", "--sample", "61"], "--sample 61 exceeds the 60 atoms"),
        (["{s}", "--atom", "0", "--epochs", "0"], "epochs must be"),
        (["{s}", "--atom", "0", "--model", "nope.pt"], "model file not found: nope.pt"),
        (["{s}", "--atom", "0", "--threads", "-1"], "--threads must be"),
    ],
)
def test_cli_errors_are_clear(args, message, small_glass, tiny_path, tmp_path, capsys):
    structure = tmp_path / "glass.extxyz"
    ase.io.write(structure, small_glass)
    args = [a.replace("{s}", str(structure)) for a in args]
    if "--model" not in args:
        args += ["--model", str(tiny_path)]
    rc = main(["explain", *args, "-o", str(tmp_path / "out")])
    assert rc == 2
    import re

    assert re.search(message, capsys.readouterr().err)
