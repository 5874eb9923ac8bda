"""Training on a baseline's residual (``data.baseline``) and the model that sums them
(``symgnn residual``, ``symgnn export`` of such a run): the network learns the labels less the
baseline's prediction, validation scores baseline + network, and no file made from the run
alone passes the remainder off as a barrier."""

from __future__ import annotations

import json
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch

from symgnn_ase.cli import main as cli
from symgnn_ase.compose.ensemble import export_ensemble
from symgnn_ase.compose.residual import export_residual
from symgnn_ase.data.graph import graph_from_atoms
from symgnn_ase.export import load_model
from symgnn_ase.testing import make_nan_model, make_tiny_model
from symgnn_ase.train import load_checkpoint, train
from symgnn_ase.train.evaluate import evaluate_files
from symgnn_ase.train.ridge import fit_ridge

from .helpers import run_config, write_config, write_labelled_glasses

MODEL = {"kind": "length", "node_dim": 8, "edge_dim": 8, "heads": [2, 2, 1, 1], "decoder_dim": 8}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    write_labelled_glasses(folder, 3, 90, seed=40)
    return folder


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("base") / "base.pt"
    make_tiny_model(path, kind="schnet", seed=7)
    return path


@pytest.fixture(scope="module")
def run(data, baseline, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("res")
    cfg = run_config(data, folder / "run", MODEL, {"epochs": 3, "lr": 3e-3}, seed=2)
    cfg["data"]["baseline"] = str(baseline)
    return train(write_config(folder / "res.yaml", cfg), progress=False)


def _predict(path, atoms) -> np.ndarray:
    m = load_model(path)
    g = graph_from_atoms(atoms, m.r_max, m.type_names, m.dtype)
    with torch.no_grad():
        return m.module(g.species, g.edge_index, g.edge_vec).double().numpy()


def test_the_network_learns_the_residual_and_is_scored_with_the_baseline(
    run, data, baseline, tmp_path
) -> None:
    best = load_checkpoint(run / "best.pt")
    base = [_predict(baseline, ase.io.read(data / f"g{k}.extxyz")) for k in (0, 1)]
    labels = [ase.io.read(data / f"g{k}.extxyz").arrays["energy_barrier"] for k in (0, 1)]
    residual = np.concatenate(labels) - np.concatenate(base)
    # the label standardization is that of the remainder, not of the barriers
    assert best["label_mean"] == pytest.approx(residual.mean(), abs=1e-5)
    assert best["label_std"] == pytest.approx(residual.std(ddof=1), rel=1e-4)
    assert "data.baseline" in best["data_sha256"]
    # `symgnn export RUN` writes baseline + network, which scores what training reported
    out = tmp_path / "res.pt"
    assert cli(["export", str(run), "-o", str(out)]) == 0
    loaded = load_model(out)
    assert loaded.info["kind"] == "residual" and not loaded.is_ensemble
    assert [m["source"] for m in loaded.info["members"]] == ["base.pt", "best.pt"]
    summary = json.loads((run / "summary.json").read_text())
    scored = evaluate_files(loaded, [str(data / "g2.extxyz")])["pooled"]["pearson"]
    assert scored == pytest.approx(summary["valid"]["pooled"]["pearson"], abs=1e-5)


def test_residual_model_is_the_sum_layer_by_layer_too(run, data, baseline, tmp_path) -> None:
    out = export_residual(baseline, [run], tmp_path / "sum.pt")
    m = load_model(out)
    atoms = ase.io.read(data / "g2.extxyz")
    g = graph_from_atoms(atoms, m.r_max, m.type_names, m.dtype)
    base = load_model(baseline).module  # loaded as m is, outside the no_grad block
    with torch.no_grad():
        total = m.module(g.species, g.edge_index, g.edge_vec)
        parts = m.module.forward_members(g.species, g.edge_index, g.edge_vec)
        h, e = m.module.embed(g.species, g.edge_index, g.edge_vec)
        for layer in range(m.n_layers):
            h, e = m.module.interact(layer, h, e, g.edge_index)
        layered = m.module.readout(h)
        alone = base(g.species, g.edge_index, g.edge_vec)
    assert parts.shape[0] == 2
    # the baseline inside the residual file is the same network on other copies of its weights:
    # the same numbers to round-off (docs/contracts.md, Determinism)
    torch.testing.assert_close(parts[0], alone, rtol=0, atol=1e-6)
    assert torch.equal(total, parts.sum(0))  # the same computation twice: bit for bit
    torch.testing.assert_close(layered, total, rtol=1e-5, atol=1e-5)
    # a residual file is one model: it can join an ensemble
    ens = export_ensemble([str(out), str(baseline)], tmp_path / "ens.pt")
    assert load_model(ens).ensemble_size == 2


def test_a_residual_run_alone_is_refused_where_it_would_pass_for_barriers(
    run, baseline, tmp_path, capsys
) -> None:
    with pytest.raises(ValueError, match=r"data\.baseline .*remainder.*symgnn residual"):
        export_ensemble([str(run), str(baseline)], tmp_path / "ens.pt")
    assert not (tmp_path / "ens.pt").exists()
    with pytest.raises(ValueError, match="at least 1 network"):
        export_residual(baseline, [], tmp_path / "r.pt")
    assert cli(["export", str(run), "-o", str(tmp_path / "t.pt"), "--transforms", "2"]) == 2
    assert "--transforms is not available for a run trained with" in capsys.readouterr().err
    assert not (tmp_path / "t.pt").exists()


def test_a_residual_run_starts_only_a_run_with_the_same_baseline(run, data, tmp_path) -> None:
    cfg = run_config(data, tmp_path / "plain", None, {"epochs": 1})
    del cfg["model"]
    cfg["init"] = str(run)
    with pytest.raises(ValueError, match=r"init: .* was trained with data\.baseline '.*base\.pt'"):
        train(write_config(tmp_path / "plain.yaml", cfg), progress=False)
    exported = tmp_path / "res.pt"
    assert cli(["export", str(run), "-o", str(exported)]) == 0
    cfg["init"] = str(exported)
    with pytest.raises(ValueError, match="of kind `residual`"):
        train(write_config(tmp_path / "plain2.yaml", cfg), progress=False)


def test_baseline_must_match_the_network_and_is_not_for_ridge_fits(
    data, baseline, tmp_path
) -> None:
    other = tmp_path / "other.pt"
    make_tiny_model(other, kind="length", seed=1, r_max=4.5)
    cfg = run_config(data, tmp_path / "run", MODEL, {"epochs": 1})
    cfg["data"]["baseline"] = str(other)
    with pytest.raises(ValueError, match=r"data\.baseline: .*r_max 4\.5 Å.*must match"):
        train(write_config(tmp_path / "a.yaml", cfg), progress=False)
    cfg["data"]["baseline"] = 3
    with pytest.raises(ValueError, match=r"`data\.baseline` must be a model file.*got 3"):
        train(write_config(tmp_path / "b.yaml", cfg), progress=False)
    nan = tmp_path / "nan.pt"
    make_nan_model(nan, kind="length")
    cfg["data"]["baseline"] = str(nan)
    with pytest.raises(
        ValueError,
        match=r"g0\.extxyz: data\.baseline .* predicted nan for atom 0 "
        r"\(90 atom\(s\) non-finite\)",
    ):
        train(write_config(tmp_path / "d.yaml", cfg), progress=False)
    ridge_model = {"kind": "ridge", "heads": [], "n_layers": 2, "density_cutoff": 5.0}
    ridge = run_config(data, tmp_path / "ridge", ridge_model, {})
    ridge["data"]["baseline"] = str(baseline)
    with pytest.raises(ValueError, match=r"data\.baseline .*is for network training"):
        fit_ridge(write_config(tmp_path / "c.yaml", ridge))
