"""Shallow ensembles (``model.readout_heads`` = M > 1): one network with M decoder heads, written
as an ensemble file (docs/contracts.md) that every ensemble reader runs unchanged; its loss, its
start from a one-head model, and a training run that ends in such a file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from symgnn_ase import SymGNNCalculator
from symgnn_ase.calculator import BARRIER_STD
from symgnn_ase.data.graph import graph_from_atoms
from symgnn_ase.export import load_model
from symgnn_ase.format import ENSEMBLE_SIZE_KEY
from symgnn_ase.nn.config import ModelConfig
from symgnn_ase.nn.factory import build_model
from symgnn_ase.nn.shallow import ShallowSymGNN, widen_readout
from symgnn_ase.testing import random_glass, tiny_config
from symgnn_ase.train.checkpoints import atomic_save
from symgnn_ase.train.export import export_run
from symgnn_ase.train.shallow_loss import frame_loss, training_view

from .helpers import assert_rotation_and_reflection_invariant

HEADS = 4


def _shallow(seed: int = 0, kind: str = "length") -> ShallowSymGNN:
    torch.manual_seed(seed)
    model = build_model(tiny_config(kind, readout_heads=HEADS))
    with torch.no_grad():
        model.label_mean.fill_(1.6)
        model.label_std.fill_(0.35)
    return model.eval()


@pytest.fixture(scope="module")
def shallow_file(tmp_path_factory) -> Path:
    """A tiny length model with 4 heads, exported through a training checkpoint with a
    calibrated std_scale of 1.5 (the path `symgnn export` takes)."""
    folder = tmp_path_factory.mktemp("shallow")
    model = _shallow(seed=3)
    cfg = tiny_config("length", readout_heads=HEADS).to_dict()
    atomic_save({"model": model.state_dict(), "config": {"model": cfg}}, folder / "best.pt")
    return export_run(folder, folder / "shallow.pt", std_scale=1.5)


def test_config_readout_heads() -> None:
    assert "readout_heads" not in tiny_config("length").to_dict()  # files written before
    assert tiny_config("length", readout_heads=3).to_dict()["readout_heads"] == 3
    assert isinstance(build_model(tiny_config("symgnn", readout_heads=2)), ShallowSymGNN)
    with pytest.raises(ValueError, match="model.readout_heads must be >= 1, got 0"):
        tiny_config("length", readout_heads=0)
    with pytest.raises(ValueError, match="readout_heads > 1.*got kind 'schnet'"):
        tiny_config("schnet", readout_heads=2)
    with pytest.raises(ValueError, match="model.readout_heads must be an integer"):
        ModelConfig(kind="length", readout_heads=2.0)


def test_mean_is_the_mean_of_the_heads_and_std_their_spread() -> None:
    model = _shallow()
    atoms = random_glass(80, seed=1)
    g = graph_from_atoms(atoms, 5.0, ["Cu", "Zr"], torch.float32)
    with torch.no_grad():
        model.std_scale.fill_(2.0)
        heads = model.forward_members(g.species, g.edge_index, g.edge_vec)
        mean = model(g.species, g.edge_index, g.edge_vec)
        mean_std = model.forward_std(g.species, g.edge_index, g.edge_vec)
        raw = model.decoder(_final_state(model, g))
    assert heads.shape == (HEADS, 80)
    torch.testing.assert_close(heads, (raw * 0.35 + 1.6).T, rtol=0, atol=0)
    assert torch.equal(mean, heads.mean(0))
    assert torch.equal(mean_std[0], heads.mean(0))
    # sample standard deviation (M - 1) times std_scale
    want = torch.sqrt(((heads - heads.mean(0)) ** 2).sum(0) / (HEADS - 1)) * 2.0
    torch.testing.assert_close(mean_std[1], want, rtol=1e-5, atol=1e-7)
    assert bool((mean_std[1] > 0).all())


def _final_state(model: torch.nn.Module, g) -> torch.Tensor:
    h, e = model.embed(g.species, g.edge_index, g.edge_vec)
    for layer in range(model.n_layers):
        h, e = model.interact(layer, h, e, g.edge_index, None)
    return h


def test_exported_file_loads_as_an_ensemble(shallow_file) -> None:
    loaded = load_model(shallow_file)
    assert loaded.ensemble_size == HEADS and loaded.is_ensemble
    assert loaded.feature_dim == tiny_config("length").node_dim  # one network's node state
    assert loaded.info["ensemble_size"] == HEADS and loaded.info["std_scale"] == 1.5
    import zipfile

    with zipfile.ZipFile(shallow_file) as zf:
        names = {n.rsplit("/", 1)[-1]: n for n in zf.namelist()}
        assert zf.read(names[ENSEMBLE_SIZE_KEY]).decode() == str(HEADS)
    atoms = random_glass(90, seed=2)
    g = graph_from_atoms(atoms, loaded.r_max, loaded.type_names, loaded.dtype)
    m = loaded.module
    with torch.inference_mode():
        heads = m.forward_members(g.species, g.edge_index, g.edge_vec)
        mean_std = m.forward_std(g.species, g.edge_index, g.edge_vec)
        mean = m(g.species, g.edge_index, g.edge_vec)
        # what the LAMMPS compute runs with `std yes`: layer by layer, then readout_std
        h = _final_state(m, g)
        by_layer = m.readout_std(h)
        by_layer_heads = m.readout_members(h)
    assert torch.equal(mean, heads.mean(0))
    torch.testing.assert_close(mean_std[1], heads.std(0) * 1.5, rtol=0, atol=0)
    torch.testing.assert_close(by_layer, mean_std, rtol=0, atol=1e-6)
    torch.testing.assert_close(by_layer_heads, heads, rtol=0, atol=1e-6)
    # the ASE calculator reports the spread like any ensemble's
    calc = SymGNNCalculator(str(shallow_file))
    atoms.calc = calc
    calc.calculate(atoms)
    np.testing.assert_allclose(calc.results[BARRIER_STD], mean_std[1].double().numpy(), atol=1e-6)


def test_exactly_rotation_invariant(shallow_file) -> None:
    loaded = load_model(shallow_file)

    def predict(atoms) -> np.ndarray:
        g = graph_from_atoms(atoms, loaded.r_max, loaded.type_names, loaded.dtype)
        with torch.inference_mode():
            out = loaded.module.forward_std(g.species, g.edge_index, g.edge_vec)
        return out.double().numpy()

    assert_rotation_and_reflection_invariant(predict, random_glass(120, seed=7), atol=1e-6)


def test_std_scale_of_a_single_model_is_refused(tmp_path) -> None:
    torch.manual_seed(0)
    cfg = tiny_config("length")
    atomic_save(
        {"model": build_model(cfg).state_dict(), "config": {"model": cfg.to_dict()}},
        tmp_path / "best.pt",
    )
    with pytest.raises(ValueError, match="std_scale applies to a shallow ensemble"):
        export_run(tmp_path, tmp_path / "one.pt", std_scale=2.0)
    with pytest.raises(ValueError, match="std_scale must be a finite number > 0, got -1"):
        ShallowSymGNN(tiny_config("length", readout_heads=2), std_scale=-1.0)


def test_widened_from_one_head() -> None:
    """Widened without noise, every head is the one-head model; with noise they differ."""
    torch.manual_seed(5)
    single = build_model(tiny_config("length")).eval()
    wide = build_model(tiny_config("length", readout_heads=HEADS)).eval()
    wide.load_state_dict(widen_readout(single.state_dict(), wide, 0.0, seed=0))
    g = graph_from_atoms(random_glass(60, seed=3), 5.0, ["Cu", "Zr"], torch.float32)
    with torch.no_grad():
        one = single(g.species, g.edge_index, g.edge_vec)
        heads = wide.forward_members(g.species, g.edge_index, g.edge_vec)
    assert float(wide.std_scale) == 1.0
    for k in range(HEADS):
        torch.testing.assert_close(heads[k], one, rtol=0, atol=1e-6)
    wide.load_state_dict(widen_readout(single.state_dict(), wide, 0.3, seed=0))
    with torch.no_grad():
        std = wide.forward_std(g.species, g.edge_index, g.edge_vec)[1]
    assert bool((std > 0).all())
    bad = dict(single.state_dict())
    bad["decoder.4.weight"] = torch.zeros(2, bad["decoder.4.weight"].shape[1])
    with pytest.raises(ValueError, match=r"init: decoder\.4\.weight has shape \[2, 16\]"):
        widen_readout(bad, wide, 0.1, seed=0)


def test_loss() -> None:
    """MSE for one model; for heads the NLL of their mean and sample variance, mixed."""
    gen = torch.Generator().manual_seed(0)
    pred = torch.randn(HEADS, 50, generator=gen, dtype=torch.float64)
    y = torch.randn(50, generator=gen, dtype=torch.float64)
    std = 0.5
    mu, var = (pred / std).mean(0), (pred / std).var(0) + 1e-3
    sq = (mu - y / std) ** 2
    nll = (0.5 * (sq / var + torch.log(var))).mean()
    opt = {"nll_weight": 0.25, "nll_var_floor": 1e-3}
    torch.testing.assert_close(frame_loss(pred, y, None, std, opt), 0.75 * sq.mean() + 0.25 * nll)
    mse_only = frame_loss(pred, y, None, std, {"nll_weight": 0.0})
    torch.testing.assert_close(mse_only, frame_loss(pred.mean(0), y, None, std, {}))
    mask = torch.arange(50) % 2 == 0
    torch.testing.assert_close(
        frame_loss(pred, y, mask, std, opt), frame_loss(pred[:, mask], y[mask], None, std, opt)
    )
    model = _shallow()
    assert training_view(model) is not model
    g = graph_from_atoms(random_glass(40, seed=1), 5.0, ["Cu", "Zr"], torch.float32)
    assert training_view(model)(g.species, g.edge_index, g.edge_vec).shape == (HEADS, 40)
    single = build_model(tiny_config("length"))
    assert training_view(single) is single


def test_training_from_one_head_ends_in_an_ensemble_file(tmp_path) -> None:
    """init from a one-head run, readout_heads 3: trains on the heads, exports an ensemble."""
    from symgnn_ase.train import train

    from ..train.helpers import run_config, write_config, write_labelled_glasses

    write_labelled_glasses(tmp_path, 3, 40, seed=11)
    model = tiny_config("length").to_dict()
    optim = {"lr": 1e-3, "epochs": 1}
    first = train(
        write_config(tmp_path / "a.yaml", run_config(tmp_path, tmp_path / "a", model, optim)),
        progress=False,
    )
    cfg = run_config(tmp_path, tmp_path / "b", dict(model, readout_heads=3), optim)
    cfg["init"] = str(first)
    run = train(write_config(tmp_path / "b.yaml", cfg), progress=False)
    loaded = load_model(export_run(run, tmp_path / "b.pt"))
    assert loaded.ensemble_size == 3 and loaded.info["std_scale"] == 1.0


def test_committed_default_record() -> None:
    """training/runs/default_shallow/default.pt: an 8-head ensemble file with the relax protocol
    it was trained with, the std_scale of its calibration record, and the validation Pearson
    and mean z^2 its record quotes on the committed moved validation glass."""
    import json

    import ase.io

    from symgnn_ase.potential.relax import RelaxProtocol, read_relax_metadata

    root = Path(__file__).resolve().parents[3]
    folder = root / "training" / "runs" / "default_shallow"
    loaded = load_model(folder / "default.pt")
    assert loaded.ensemble_size == 8 and loaded.feature_dim == 64
    assert read_relax_metadata(loaded) == RelaxProtocol(4, 0.12, 0.3, "CuZr_mm.eam.fs", "eam/fs")
    calib = json.loads((folder / "default_calibration.json").read_text())
    assert loaded.info["std_scale"] == calib["std_scale"]
    record = json.loads((folder / "validation.json").read_text())
    want = record["training/runs/default_shallow/default.pt"]["protocol relaxed"]
    atoms = ase.io.read(root / "training" / "data" / "relaxed4" / "valid.extxyz.gz")
    g = graph_from_atoms(atoms, loaded.r_max, loaded.type_names, loaded.dtype)
    with torch.inference_mode():
        mean, std = loaded.module.forward_std(g.species, g.edge_index, g.edge_vec).double()
    y = atoms.arrays["energy_barrier"]
    assert abs(np.corrcoef(mean.numpy(), y)[0, 1] - want["pearson"]) < 1e-5
    z2 = float(np.mean(((mean.numpy() - y) / std.numpy()) ** 2))
    assert abs(z2 - want["mean_z2"]) < 1e-4
