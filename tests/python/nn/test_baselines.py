"""The baseline kinds: SchNet (``schnet``) and the descriptor + ridge model (``ridge``).

The export contract, locality, determinism and permutation tests run for every kind in
test_model.py; here: exact invariance, the descriptor features against a plain numpy
reference on ASE's own neighbour list, the closed-form fit, and config errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from ase.neighborlist import neighbor_list

from symgnn_ase.data.descriptors import (
    descriptor_config,
    descriptor_features,
    feature_names,
)
from symgnn_ase.data.graph import graph_from_atoms
from symgnn_ase.export import load_model
from symgnn_ase.nn import build_model
from symgnn_ase.testing import make_tiny_model, random_glass, tiny_config
from symgnn_ase.train.evaluate import random_orthogonal
from symgnn_ase.train.ridge import fit_ridge, ridge_path


@pytest.mark.parametrize("kind", ["schnet", "ridge"])
def test_exactly_invariant(kind, tmp_path):
    make_tiny_model(tmp_path / "m.pt", kind)
    model = load_model(tmp_path / "m.pt").module
    for seed in range(2):
        g = graph_from_atoms(random_glass(100, seed=20 + seed), 5.0, ["Cu", "Zr"], torch.float64)
        vec = g.edge_vec.numpy()
        with torch.no_grad():
            ref = model(g.species, g.edge_index, g.edge_vec.float())
            for q in random_orthogonal(4, seed):
                out = model(g.species, g.edge_index, torch.from_numpy(vec @ q.T).float())
                torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)


def _switch(r: np.ndarray, cutoff: float, width: float = 0.5) -> np.ndarray:
    x = np.clip((r - (cutoff - width)) / width, 0.0, 1.0)
    return 0.5 * (np.cos(np.pi * x) + 1.0)


def _reference_features(atoms, cfg) -> np.ndarray:
    """The descriptor by its definition, atom by atom, on ASE's neighbour list."""
    names = cfg.type_names
    species = np.array([names.index(s) for s in atoms.get_chemical_symbols()])
    n, s_count = len(atoms), len(names)
    centers = np.linspace(cfg.rbf_min, cfg.rbf_max, cfg.n_rbf)
    i, j, d = neighbor_list("ijd", atoms, cfg.r_max)
    g = np.zeros((n, s_count * (cfg.n_rbf + 1)))
    g[np.arange(n), species] = 1.0
    for a, b, r in zip(i, j, d, strict=True):
        if r < cfg.density_cutoff:
            dens = np.exp(-((r - centers) ** 2) / (2 * cfg.rbf_sigma**2))
            col = s_count + species[b] * cfg.n_rbf
            g[a, col : col + cfg.n_rbf] += dens * _switch(r, cfg.density_cutoff)
    blocks = [g]
    prev = [g] * len(cfg.smooth_lengths)
    for _hop in range(1, cfg.n_layers):
        for k, length in enumerate(cfg.smooth_lengths):
            num, den = prev[k].copy(), np.ones(n)
            for a, b, r in zip(i, j, d, strict=True):
                w = np.exp(-r / length) * _switch(r, cfg.r_max)
                num[a] += w * prev[k][b]
                den[a] += w
            prev[k] = num / den[:, None]
        blocks += prev
    return np.concatenate(blocks, axis=1)


@pytest.mark.parametrize("n_layers", [2, 4])
def test_descriptor_features_match_their_definition(n_layers):
    cfg = descriptor_config(r_max=6.0, n_rbf=8, smooth_lengths=[1.0, 3.0], n_layers=n_layers)
    atoms = random_glass(80, seed=5)
    got = descriptor_features(atoms, cfg, dtype=torch.float64)
    ref = _reference_features(atoms, cfg)
    assert got.shape == ref.shape == (80, len(feature_names(cfg)))
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10)


def test_default_descriptor_shape_and_names():
    names = feature_names()
    assert len(names) == 4 * 2 * 30 == build_model(descriptor_config()).feature_dim
    assert names[:3] == ["self:Cu", "self:Zr", "rho:Cu@2.20"]
    assert names[-1] == "L4:rho:Zr@5.00"
    hops = descriptor_config(r_max=5.0, density_cutoff=5.0, n_layers=4)
    names = feature_names(hops)
    assert len(names) == (1 + 3 * 3) * 2 * 30 == build_model(hops).feature_dim
    assert names[-1] == "L4x3:rho:Zr@5.00" and names[240] == "L1x2:self:Cu"


def test_ridge_path_solves_the_normal_equations():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((200, 6))
    z -= z.mean(0)
    t = z @ rng.standard_normal(6) + 0.1 * rng.standard_normal(200)
    w = rng.uniform(0.5, 2.0, 200)
    coefs = ridge_path(z, t, w, (0.1, 10.0))
    for alpha, coef in zip((0.1, 10.0), coefs, strict=True):
        lhs = (z.T * w) @ z + alpha * np.eye(6)
        np.testing.assert_allclose(lhs @ coef, (z.T * w) @ t, rtol=1e-9, atol=1e-9)


def _write_labelled(path, seed: int) -> None:
    """A random glass whose label is a smooth function of its local Zr density."""
    atoms = random_glass(120, seed=seed)
    zr = np.array([s == "Zr" for s in atoms.get_chemical_symbols()], dtype=float)
    i, j, d = neighbor_list("ijd", atoms, 4.0)
    local = np.bincount(i, weights=zr[j], minlength=len(atoms))
    atoms.arrays["energy_barrier"] = 1.5 + 0.1 * local + 0.2 * zr
    atoms.write(path)


def test_fit_ridge_run_folder_exports_and_predicts(tmp_path):
    for k in range(3):
        _write_labelled(tmp_path / f"g{k}.extxyz", seed=30 + k)
    cfg = tmp_path / "ridge.yaml"
    cfg.write_text(
        f"""run_dir: {tmp_path / "run"}
threads: 1
data:
  train: [{tmp_path / "g0.extxyz"}, {tmp_path / "g1.extxyz"}]
  valid: {tmp_path / "g2.extxyz"}
model: {{kind: ridge, r_max: 6.0, n_layers: 2, heads: [], n_rbf: 8, smooth_lengths: [1.0, 2.0]}}
"""
    )
    run = fit_ridge(cfg, alphas=(0.01, 1.0, 100.0))
    for name in ("best.pt", "metrics.csv", "summary.json", "alpha_curve.png", "parity.png"):
        assert (run / name).exists(), name
    from symgnn_ase.train.evaluate import evaluate_files
    from symgnn_ase.train.export import export_run

    path = export_run(run, tmp_path / "ridge.pt")
    loaded = load_model(path)
    assert loaded.info["kind"] == "ridge" and loaded.n_layers == 2 and loaded.r_max == 6.0
    res = evaluate_files(loaded, [str(tmp_path / "g2.extxyz")], rotations=2)
    import json

    summary = json.loads((run / "summary.json").read_text())
    assert res["pooled"]["pearson"] > 0.5
    assert res["pooled"]["pearson"] == pytest.approx(
        summary["valid"]["pooled"]["pearson"], abs=1e-6
    )
    assert res["rotations"]["spread_max_eV"] < 1e-5
    with pytest.raises(ValueError, match="already holds a fit"):
        fit_ridge(cfg)


def test_fit_ridge_refuses_other_kinds(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {train: [a.extxyz], valid: b.extxyz}\nmodel: {kind: length}\n")
    with pytest.raises(ValueError, match="needs `model.kind: ridge`"):
        fit_ridge(cfg)


def test_baseline_config_errors():
    with pytest.raises(ValueError, match="n_layers must be >= 2, got 1"):
        tiny_config("ridge", n_layers=1)
    with pytest.raises(ValueError, match="model.dtype must be 'float64' or 'float32', got 'half'"):
        tiny_config("ridge", dtype="half")
    with pytest.raises(ValueError, match="at most 16 layers .* got n_layers 1000"):
        tiny_config("ridge", n_layers=1000)
    with pytest.raises(ValueError, match="model.dtype is an option of kind 'ridge' .* 'schnet'"):
        tiny_config("schnet", dtype="float64")
    assert build_model(tiny_config("ridge")).linear.weight.dtype == torch.float64
    with pytest.raises(ValueError, match="density_cutoff .* must be <= r_max"):
        tiny_config("ridge", density_cutoff=6.0)
    with pytest.raises(ValueError, match="rbf_max .* must be >= model.rbf_min"):
        tiny_config("ridge", rbf_min=4.0)
    with pytest.raises(ValueError, match="smooth_lengths must be a list of lengths > 0"):
        tiny_config("ridge", smooth_lengths=[1.0, -2.0])
    with pytest.raises(ValueError, match="descriptor features need a model config of kind"):
        descriptor_features(random_glass(20), tiny_config("schnet"))


def test_schnet_learns_a_smooth_label():
    """A few full-graph steps lower the loss (gradients reach every parameter)."""
    torch.manual_seed(0)
    model = build_model(tiny_config("schnet")).train()
    atoms = random_glass(120, seed=7)
    g = graph_from_atoms(atoms, 5.0, ["Cu", "Zr"])
    target = (g.species.float() - 0.4) + 0.01 * torch.bincount(g.edge_index[1]).float()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(30):
        loss = ((model(g.species, g.edge_index, g.edge_vec) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        if not losses:
            for name, p in model.named_parameters():
                assert p.grad is not None and torch.isfinite(p.grad).all(), name
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_schnet_edge_weight_switches_messages_off(tmp_path):
    make_tiny_model(tmp_path / "m.pt", "schnet")
    model = load_model(tmp_path / "m.pt").module
    g = graph_from_atoms(random_glass(60, seed=8), 5.0, ["Cu", "Zr"])
    ones = torch.ones(g.edge_index.shape[1])
    zeros = torch.zeros_like(ones)
    with torch.no_grad():
        full = model(g.species, g.edge_index, g.edge_vec)
        torch.testing.assert_close(model(g.species, g.edge_index, g.edge_vec, ones), full)
        none = model(g.species, g.edge_index, g.edge_vec, zeros)
    # without messages an atom's output depends on its species only
    cu, zr = none[g.species == 0], none[g.species == 1]
    assert torch.allclose(cu, cu[0]) and torch.allclose(zr, zr[0])


def test_ridge_with_more_hops_exports_in_float32(tmp_path):
    """n_layers 4 (three hops of averaging) in float32: the exported file equals the eager
    model, layer by layer, and says float32; an atom moved farther than the reach changes
    nothing."""
    eager = make_tiny_model(tmp_path / "m.pt", "ridge", n_layers=4, dtype="float32").eval()
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.n_layers == 4 and loaded.dtype == torch.float32
    assert eager.linear.weight.dtype == torch.float32
    atoms = random_glass(150, seed=8)
    g = graph_from_atoms(atoms, 5.0, ["Cu", "Zr"], torch.float32)
    with torch.no_grad():
        ref = eager(g.species, g.edge_index, g.edge_vec)
        h, e = loaded.module.embed(g.species, g.edge_index, g.edge_vec)
        for layer in range(4):
            h, e = loaded.module.interact(layer, h, e, g.edge_index)
        torch.testing.assert_close(loaded.module.readout(h), ref, atol=1e-6, rtol=0)
    # the last hop block is filled, and differs from the first
    width = 3 * 2 * 7  # three lengths x (2 species x (6 Gaussians + 1))
    assert h[:, -width:].abs().sum() > 0
    assert not torch.allclose(h[:, 14 : 14 + width], h[:, -width:])


def _ridge_config(tmp_path, run: str, extra_data: str = "", r_max: float = 5.0) -> Path:
    cfg = tmp_path / f"{run}.yaml"
    cfg.write_text(
        f"""run_dir: {tmp_path / run}
threads: 1
data:
  train: [{tmp_path / "g0.extxyz"}, {tmp_path / "g1.extxyz"}]
  valid: {tmp_path / "g2.extxyz"}
{extra_data}
model: {{kind: ridge, r_max: {r_max}, n_layers: 3, heads: [], n_rbf: 8, density_cutoff: 5.0,
         smooth_lengths: [1.0, 2.0], dtype: float32}}
"""
    )
    return cfg


def test_removed_data_denoiser_is_refused_by_name(tmp_path):
    """data.denoiser went with the learned thermal denoiser: a config that still has it is
    refused before any work, naming the key, the replacement and the value, for ridge fits and
    network training alike."""
    from symgnn_ase.train.loop import train

    for k in range(3):
        _write_labelled(tmp_path / f"g{k}.extxyz", seed=40 + k)
    old = tmp_path / "dn.pt"
    cfg = _ridge_config(tmp_path, "den", f"  denoiser: {old}")
    pattern = r"`data.denoiser` was removed .* relax protocol.* got '.*dn.pt'"
    with pytest.raises(ValueError, match=pattern):
        fit_ridge(cfg)
    with pytest.raises(ValueError, match=pattern):
        train(cfg)
    assert not (tmp_path / "den").exists()
