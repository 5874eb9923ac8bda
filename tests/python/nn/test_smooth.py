"""Spatial smoothing (``symgnn smooth``, ``symgnn_ase.compose.smooth``): the exported file gives the
formula's numbers behind any model file (single, ensemble with its std), stays
exactly invariant, is continuous when atoms cross the cutoff, and refuses a bad length."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase.neighborlist import neighbor_list

from symgnn_ase import SymGNNCalculator
from symgnn_ase.calculator import BARRIER_STD, BARRIERS
from symgnn_ase.cli import main
from symgnn_ase.compose.smooth import build_smoothed, export_smoothed, smoothing_weight
from symgnn_ase.data.graph import graph_from_atoms
from symgnn_ase.export import load_model
from symgnn_ase.testing import random_glass

from .helpers import assert_rotation_and_reflection_invariant, single_and_ensemble

STD_SCALE = 1.7


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("smooth")
    single, ens = single_and_ensemble(folder, seed=5, members_seed=50, std_scale=STD_SCALE)
    return {"single": single, "ensemble": ens}


def _members(path, atoms):
    """``[K, N]`` the predictions of a model file (K = 1 for one model)."""
    loaded = load_model(path)
    g = graph_from_atoms(atoms, loaded.r_max, loaded.type_names)
    with torch.no_grad():
        if loaded.ensemble_size > 1:
            return loaded.module.forward_members(g.species, g.edge_index, g.edge_vec).numpy()
        return loaded.module(g.species, g.edge_index, g.edge_vec).numpy()[None]


def _reference(p, atoms, length, r_cut, cutoff="cosine"):
    """The smoothing formula in numpy, on ASE's neighbor list: ``p`` ``[K, N]``."""
    i, j, d = neighbor_list("ijd", atoms, r_cut)
    x = np.minimum(d / r_cut, 1.0)
    if cutoff == "cosine":
        fc = 0.5 * (np.cos(np.pi * x) + 1.0)
    else:
        fc = 1.0 - 10.0 * x**3 + 15.0 * x**4 - 6.0 * x**5
    w = np.exp(-d / length) * fc
    n = len(atoms)
    p = np.asarray(p, dtype=np.float64)
    num = p + np.stack([np.bincount(i, w * row[j], n) for row in p])
    return num / (1.0 + np.bincount(i, w, n))


@pytest.mark.parametrize("cutoff", ["cosine", "polynomial"])
def test_single_model_gives_the_formula(parts, tmp_path, cutoff):
    atoms = random_glass(120, seed=1)
    out = export_smoothed(parts["single"], tmp_path / "s.pt", 1.3, cutoff)
    loaded = load_model(out)
    assert loaded.info["kind"] == "smoothed" and loaded.ensemble_size == 1
    assert loaded.info["smooth"] == {
        "length": 1.3,
        "cutoff": cutoff,
        "r_cut": loaded.r_max,
        "weight": "exp(-r/length) * cutoff(r), 0 from r_cut on; self weight 1",
    }
    assert loaded.n_layers == load_model(parts["single"]).n_layers + 2
    p = _members(parts["single"], atoms)
    ref = _reference(p, atoms, 1.3, loaded.r_max, cutoff)[0]
    got = SymGNNCalculator(str(out)).get_property(BARRIERS, atoms)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    g = graph_from_atoms(atoms, loaded.r_max, loaded.type_names)
    with torch.no_grad():  # the layer-by-layer path
        h, e = loaded.module.embed(g.species, g.edge_index, g.edge_vec)
        for layer in range(loaded.n_layers):
            h, e = loaded.module.interact(layer, h, e, g.edge_index)
        np.testing.assert_allclose(loaded.module.readout(h).numpy(), got, atol=1e-6)
    # it does smooth: the spread shrinks, and differs from the unsmoothed predictions
    assert got.std() < 0.9 * p[0].std()
    assert np.abs(got - p[0]).max() > 1e-3


@pytest.mark.parametrize("base", ["ensemble"])
def test_ensemble_members_mean_and_std_rows(parts, tmp_path, base):
    atoms = random_glass(110, seed=2)
    out = tmp_path / "s.pt"
    assert main(["smooth", str(parts[base]), "--length", "0.8", "-o", str(out)]) == 0
    loaded = load_model(out)
    assert loaded.ensemble_size == 3 and loaded.info["ensemble_size"] == 3
    assert loaded.info["std_scale"] == pytest.approx(STD_SCALE)
    assert loaded.info["base"]["info"]["kind"] == load_model(parts[base]).info["kind"]
    ref = _reference(_members(parts[base], atoms), atoms, 0.8, loaded.r_max)
    np.testing.assert_allclose(_members(out, atoms), ref, atol=1e-5)
    g = graph_from_atoms(atoms, loaded.r_max, loaded.type_names)
    with torch.no_grad():
        rows = loaded.module.forward_std(g.species, g.edge_index, g.edge_vec).numpy()
        mean = loaded.module(g.species, g.edge_index, g.edge_vec).numpy()
    np.testing.assert_allclose(rows[0], ref.mean(0), atol=1e-5)
    np.testing.assert_allclose(rows[1], ref.std(0, ddof=1) * STD_SCALE, atol=1e-5)
    np.testing.assert_allclose(mean, rows[0], atol=1e-6)
    # the layer-by-layer path (the LAMMPS compute's) gives the same numbers
    with torch.no_grad():
        h, e = loaded.module.embed(g.species, g.edge_index, g.edge_vec)
        for layer in range(loaded.n_layers):
            h, e = loaded.module.interact(layer, h, e, g.edge_index)
        np.testing.assert_allclose(loaded.module.readout_std(h).numpy(), rows, atol=1e-6)
        np.testing.assert_allclose(loaded.module.readout(h).numpy(), mean, atol=1e-6)
    calc = SymGNNCalculator(str(out))
    np.testing.assert_allclose(calc.get_property(BARRIERS, atoms), rows[0], atol=1e-6)
    np.testing.assert_allclose(calc.get_property(BARRIER_STD, atoms), rows[1], atol=1e-6)


def test_exactly_invariant_under_rotation_and_reflection(parts):
    atoms = random_glass(150, seed=3)
    model, loaded = build_smoothed(parts["ensemble"], 1.5)

    def predict(a):
        g = graph_from_atoms(a, loaded.r_max, loaded.type_names)
        with torch.no_grad():
            return model(g.species, g.edge_index, g.edge_vec).numpy()

    assert_rotation_and_reflection_invariant(predict, atoms, atol=1e-6)


def test_weight_reaches_zero_smoothly_at_the_cutoff():
    r = torch.tensor([0.0, 2.5, 4.999, 5.0, 5.5], dtype=torch.float64)
    length, r_cut = torch.tensor(1.5, dtype=torch.float64), torch.tensor(5.0, dtype=torch.float64)
    for poly in (False, True):
        w = smoothing_weight(r, length, r_cut, poly).numpy()
        assert w[0] == 1.0  # the atom's own weight
        assert 0 < w[1] < math.exp(-2.5 / 1.5)
        assert w[2] < 1e-6 and w[3] == 0.0 and w[4] == 0.0


def test_continuous_when_a_neighbour_crosses_the_cutoff(parts, tmp_path):
    """Two atoms pulled apart through r_max: the smoothed prediction of one changes by no more
    than the base's does plus the weight's tiny tail."""
    from ase import Atoms

    out = export_smoothed(parts["single"], tmp_path / "s.pt", 1.5)
    calc = SymGNNCalculator(str(out))
    r_max = load_model(out).r_max
    vals = []
    for d in (r_max - 1e-3, r_max + 1e-3):
        atoms = Atoms("CuZr", positions=[[0, 0, 0], [d, 0, 0]], cell=[30, 30, 30], pbc=True)
        vals.append(calc.get_property(BARRIERS, atoms))
    base = SymGNNCalculator(str(parts["single"]))
    jumps = []
    for d in (r_max - 1e-3, r_max + 1e-3):
        atoms = Atoms("CuZr", positions=[[0, 0, 0], [d, 0, 0]], cell=[30, 30, 30], pbc=True)
        jumps.append(base.get_property(BARRIERS, atoms))
    base_jump = np.abs(jumps[1] - jumps[0]).max()
    assert np.abs(vals[1] - vals[0]).max() <= base_jump + 1e-5


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_length_is_named(parts, tmp_path, bad, capsys):
    with pytest.raises(
        ValueError, match=rf"smoothing length L \(Å\) must be a finite number > 0, got {bad}"
    ):
        export_smoothed(parts["single"], tmp_path / "x.pt", bad)
    assert not (tmp_path / "x.pt").exists()
    rc = main(["smooth", str(parts["single"]), "--length", str(bad), "-o", str(tmp_path / "y.pt")])
    assert rc == 2
    assert f"must be a finite number > 0, got {bad}" in capsys.readouterr().err


def test_bad_cutoff_and_output_are_refused(parts):
    with pytest.raises(ValueError, match="cutoff form must be one of .* got 'gauss'"):
        build_smoothed(parts["single"], 1.0, cutoff="gauss")
    with pytest.raises(ValueError):  # the output may not be the base model itself
        export_smoothed(parts["single"], parts["single"], 1.0)
