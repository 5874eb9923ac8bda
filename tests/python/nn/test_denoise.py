"""The thermal denoiser (``symgnn denoise``, ``symgnn_ase.nn.denoise``): a barrier model that
predicts on ``x + alpha * F(x)`` keeps the model contract (layer by layer, ensembles, exact
invariance), never moves the user's atoms, and refuses what does not fit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from symgnn_ase import SymGNNCalculator
from symgnn_ase.calculator import BARRIER_STD, BARRIERS
from symgnn_ase.cli import main
from symgnn_ase.data.graph import graph_from_atoms
from symgnn_ase.denoise import build_denoised, export_denoised, load_force_net
from symgnn_ase.export import load_model
from symgnn_ase.testing import make_tiny_force_net, random_glass

from .helpers import assert_rotation_and_reflection_invariant, single_and_ensemble


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("denoise")
    single, ens = single_and_ensemble(folder, seed=3, members_seed=30)
    net = make_tiny_force_net(folder / "net", seed=4)
    return {"single": single, "ensemble": ens, "net": net, "folder": folder}


def _predict(model, atoms, r_max=5.0):
    g = graph_from_atoms(atoms, r_max, ["Cu", "Zr"])
    with torch.no_grad():
        return model(g.species, g.edge_index, g.edge_vec).numpy()


def test_alpha_zero_gives_the_base_model(parts):
    atoms = random_glass(120, seed=1)
    for base in ("single", "ensemble"):
        model, loaded, _ = build_denoised(parts[base], parts["net"], alpha=0.0, n_steps=2)
        assert np.array_equal(_predict(model, atoms), _predict(loaded.module, atoms)), base


def test_moves_are_force_steps_capped_and_change_the_prediction(parts):
    atoms = random_glass(120, seed=2)
    g = graph_from_atoms(atoms, 5.0, ["Cu", "Zr"])
    net, _ = load_force_net(parts["net"])
    model, loaded, _ = build_denoised(parts["single"], parts["net"], alpha=0.05, n_steps=1)
    with torch.no_grad():
        u = model.displacements(g.species, g.edge_index, g.edge_vec)
        forces = net(g.species, g.edge_index, g.edge_vec)
    assert float(u.abs().max()) > 1e-3
    torch.testing.assert_close(u, 0.05 * forces, rtol=1e-5, atol=1e-7)
    capped, _, _ = build_denoised(parts["single"], parts["net"], alpha=50.0, max_step=0.02)
    with torch.no_grad():
        u = capped.displacements(g.species, g.edge_index, g.edge_vec)
    assert float(torch.linalg.vector_norm(u, dim=1).max()) <= 0.02 + 1e-6
    # the barrier model sees the moved atoms, on the pairs of the input's neighbor list
    strong, _, _ = build_denoised(parts["single"], parts["net"], alpha=2.0, max_step=0.3)
    with torch.no_grad():
        u = strong.displacements(g.species, g.edge_index, g.edge_vec)
        vec = g.edge_vec + u[g.edge_index[0]] - u[g.edge_index[1]]
        ref = loaded.module(g.species, g.edge_index, vec).numpy()
    moved = float(np.abs(ref - _predict(loaded.module, atoms)).max())
    print(f"denoised (alpha 2, max step 0.3): max change {moved:.3g} eV")
    assert moved > 5e-5  # measured 1.3e-4 eV with these tiny models; round-off is ~1e-7
    assert np.array_equal(_predict(strong, atoms), ref)


def test_exactly_invariant_under_rotation_and_reflection(parts):
    atoms = random_glass(150, seed=5)
    model, _, _ = build_denoised(parts["ensemble"], parts["net"], alpha=0.1, n_steps=2)
    assert_rotation_and_reflection_invariant(lambda a: _predict(model, a), atoms, atol=1e-6)


def test_exported_file_in_the_calculator_and_cli(parts, tmp_path):
    out = tmp_path / "dn.pt"
    rc = main(
        [
            "denoise",
            str(parts["ensemble"]),
            "--force-net",
            str(parts["net"]),
            "-o",
            str(out),
            "--alpha",
            "0.1",
            "--steps",
            "2",
        ]
    )
    assert rc == 0
    loaded = load_model(out)
    assert loaded.info["kind"] == "denoised" and loaded.ensemble_size == 3
    assert loaded.info["denoise"]["n_steps"] == 2
    atoms = random_glass(100, seed=6)
    before = atoms.positions.copy()
    calc = SymGNNCalculator(str(out))
    mean, std = calc.get_property(BARRIERS, atoms), calc.get_property(BARRIER_STD, atoms)
    assert np.array_equal(atoms.positions, before)  # the user's atoms never move
    eager, _, _ = build_denoised(parts["ensemble"], parts["net"], alpha=0.1, n_steps=2)
    np.testing.assert_allclose(mean, _predict(eager, atoms), atol=1e-5)
    assert np.all(std > 0)


def test_bad_input_is_named(parts, tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        export_denoised(parts["single"], tmp_path / "nothing", tmp_path / "x.pt", alpha=0.1)
    other = make_tiny_force_net(tmp_path / "net6", r_max=6.0)
    with pytest.raises(ValueError, match="r_max 6 Å differs"):
        build_denoised(parts["single"], other, alpha=0.1)
    with pytest.raises(ValueError, match="alpha .* got -0.1"):
        build_denoised(parts["single"], parts["net"], alpha=-0.1)
    with pytest.raises(ValueError, match=r"max_step \(Å\) must be a finite number > 0, got 0.0"):
        build_denoised(parts["single"], parts["net"], alpha=0.1, max_step=0.0)
    swapped = make_tiny_force_net(tmp_path / "swapped")
    cfg = json.loads((swapped / "config.json").read_text())
    cfg["type_names"] = ["Zr", "Cu"]
    (swapped / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(
        ValueError, match=r"species \[Zr, Cu\] differ from the base model's \[Cu, Zr\]"
    ):
        build_denoised(parts["single"], swapped, alpha=0.1)
    (swapped / "best.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="best.pt is not a symgnn training checkpoint"):
        load_force_net(swapped)
    with pytest.raises(ValueError, match="n_steps must be >= 1, got 0"):
        build_denoised(parts["single"], parts["net"], alpha=0.1, n_steps=0)
    # the output may not be the base model itself
    with pytest.raises(ValueError):
        export_denoised(parts["single"], parts["net"], parts["single"], alpha=0.1)
