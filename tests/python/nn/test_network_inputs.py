"""EGAT kinds with per-atom inputs from the potential (``model.node_inputs`` on kind
``length``, nn/inputs.py): the embedding adds the inputs through zero-initialized weights,
``symgnn train`` computes them for every frame, the exported file declares them, and a run
started from a model without inputs predicts what that model did until training moves them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from symgnn_ase.cli import main
from symgnn_ase.data.graph import graph_from_atoms
from symgnn_ase.export import load_model
from symgnn_ase.nn import build_model
from symgnn_ase.nn.inputs import INPUT_STATE_KEYS, SymGNNInputs
from symgnn_ase.potential.lammps import LammpsPotential
from symgnn_ase.testing import random_glass, tiny_config
from symgnn_ase.train.evaluate import evaluate_files

from ..potential.node_inputs_helpers import POTENTIAL, pe_config, write_pe_glasses


def _graph_and_pe(seed: int = 3):
    atoms = random_glass(90, seed=seed)
    with LammpsPotential(POTENTIAL) as pot:
        pe = torch.from_numpy(pot.energies(atoms)).unsqueeze(1)
    return graph_from_atoms(atoms, 5.0, ["Cu", "Zr"]), pe


def test_zero_input_weights_give_the_network_without_inputs() -> None:
    torch.manual_seed(0)
    plain = build_model(tiny_config("length")).eval()
    with_inputs = build_model(tiny_config("length", node_inputs=["pe"])).eval()
    assert isinstance(with_inputs, SymGNNInputs)
    state = {**plain.state_dict(), **{k: with_inputs.state_dict()[k] for k in INPUT_STATE_KEYS}}
    with_inputs.load_state_dict(state)
    g, pe = _graph_and_pe()
    with torch.no_grad():
        a = plain(g.species, g.edge_index, g.edge_vec)
        b = with_inputs(g.species, g.edge_index, g.edge_vec, None, pe)
        torch.nn.init.normal_(with_inputs.input_proj.weight)
        c = with_inputs(g.species, g.edge_index, g.edge_vec, None, pe)
    assert torch.equal(a, b)
    assert (c - a).abs().max() > 1e-3  # the inputs reach the prediction once weighted
    with pytest.raises(ValueError, match="takes per-atom node inputs"):
        with_inputs(g.species, g.edge_index, g.edge_vec)
    with pytest.raises(ValueError, match=r"node_inputs must be \[n_atoms, n_inputs\]"):
        with_inputs.embed(g.species, g.edge_index, g.edge_vec, pe[:5])


def _network_config(folder: Path, run: Path, **extra) -> Path:
    model = {
        **tiny_config("length").to_dict(),
        "node_inputs": ["pe"],
    }
    path = pe_config(folder, run, model=model)
    cfg = yaml.safe_load(path.read_text())
    cfg["optim"] = {"epochs": 3, "lr": 3.0e-3, "compile": False}
    cfg.update(extra)
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_symgnn_train_a_network_with_inputs_and_its_file(tmp_path: Path, capsys) -> None:
    write_pe_glasses(tmp_path, n_atoms=80)
    cfg = _network_config(tmp_path, tmp_path / "run")
    assert main(["train", str(cfg), "--no-progress"]) == 0
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=False)
    spec = json.loads(best["node_inputs"])
    assert spec["names"] == ["pe"] and spec["potential"] == POTENTIAL
    # the standardization: the training frames' mean and std of the energies
    import ase.io
    import numpy as np

    with LammpsPotential(POTENTIAL) as pot:
        pe = np.concatenate([pot.energies(ase.io.read(tmp_path / f"g{k}.extxyz")) for k in (0, 1)])
    assert float(best["model"]["input_mean"][0]) == pytest.approx(pe.mean(), abs=1e-9)
    assert float(best["model"]["input_std"][0]) == pytest.approx(pe.std(), abs=1e-9)
    out = tmp_path / "pe_net.pt"
    assert main(["export", str(tmp_path / "run"), "-o", str(out)]) == 0
    capsys.readouterr()
    loaded = load_model(out)
    assert loaded.node_inputs is not None and list(loaded.node_inputs.names) == ["pe"]
    res = evaluate_files(loaded, [str(tmp_path / "g2.extxyz")], rotations=4)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert res["pooled"]["pearson"] == pytest.approx(
        summary["valid"]["pooled"]["pearson"], abs=1e-5
    )
    assert res["rotations"]["spread_max_eV"] < 1e-5  # float32 network: round-off only


def test_init_from_a_model_without_inputs_starts_with_zero_input_weights(tmp_path: Path) -> None:
    write_pe_glasses(tmp_path, n_atoms=80)
    plain = tiny_config("length").to_dict()
    base = pe_config(tmp_path, tmp_path / "base", model=plain, node_inputs_potential=None)
    cfg = yaml.safe_load(base.read_text())
    cfg["optim"] = {"epochs": 1, "lr": 1.0e-3, "compile": False}
    base.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(base), "--no-progress"]) == 0
    start = _network_config(tmp_path, tmp_path / "start", init=str(tmp_path / "base"))
    cfg = yaml.safe_load(start.read_text())
    cfg["optim"].update(lr=1.0e-12, epochs=1)  # the weights stay where init put them
    start.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(start), "--no-progress"]) == 0
    a = torch.load(tmp_path / "base" / "best.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "start" / "best.pt", weights_only=False)["model"]
    assert float(b["input_proj.weight"].abs().max()) < 1e-9  # started at zero
    assert float(b["input_std"][0]) > 0.05  # standardized on the training frames
    assert torch.allclose(a["decoder.0.weight"], b["decoder.0.weight"], atol=1e-8)
    bad = _network_config(tmp_path, tmp_path / "bad", init=str(tmp_path / "base"))
    cfg = yaml.safe_load(bad.read_text())
    cfg["model"]["node_dim"] = 32
    bad.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match="its model configuration differs"):
        _train(bad)


def _train(path: Path) -> None:
    from symgnn_ase.train import train

    train(path, progress=False)
