"""The ridge kind with per-atom inputs from the potential (``model.node_inputs``, issue 27): the
inputs averaged over the neighbours like the densities, the module's contract, the fit, the
exported file's ``node_inputs`` metadata and its checks, exact invariance."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.neighborlist import neighbor_list

from symgnn_ase.cli import main
from symgnn_ase.data.descriptors import graph_features
from symgnn_ase.data.graph import graph_from_atoms
from symgnn_ase.export import export_model, load_model, torchscript_allowed
from symgnn_ase.nn import build_model
from symgnn_ase.potential.lammps import LammpsPotential
from symgnn_ase.testing import random_glass, tiny_config
from symgnn_ase.train.evaluate import evaluate_files
from symgnn_ase.train.ridge import fit_ridge

from ..potential.node_inputs_helpers import (
    MODEL,
    POTENTIAL,
    fit_pe_ridge,
    pe_config,
    with_metadata,
    write_pe_glasses,
)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fit_pe_ridge(tmp_path_factory.mktemp("node_inputs"))


def _switch(r: np.ndarray, cutoff: float, width: float = 0.5) -> np.ndarray:
    x = np.clip((r - (cutoff - width)) / width, 0.0, 1.0)
    return 0.5 * (np.cos(np.pi * x) + 1.0)


def test_the_option_is_checked() -> None:
    with pytest.raises(ValueError, match="node_inputs.*kinds.*got node_inputs.*'equivariant'"):
        tiny_config("equivariant", node_inputs=["pe"])
    with pytest.raises(ValueError, match="one readout head.*readout_heads 4"):
        tiny_config("length", node_inputs=["pe"], readout_heads=4)
    with pytest.raises(ValueError, match="node_inputs must list distinct inputs"):
        tiny_config("ridge", node_inputs=["stress"])
    with pytest.raises(ValueError, match="node_inputs must be a list"):
        tiny_config("ridge", node_inputs="pe")
    assert "node_inputs" not in tiny_config("ridge").to_dict()  # old files' config unchanged
    assert tiny_config("ridge", node_inputs=["pe"]).to_dict()["node_inputs"] == ["pe"]


def test_inputs_are_averaged_over_the_neighbours_like_the_densities() -> None:
    cfg = tiny_config("ridge", node_inputs=["pe"], smooth_lengths=[1.0, 2.0, 4.0])
    model = build_model(cfg).eval()
    with torch.no_grad():
        model.input_mean.fill_(-4.0)
        model.input_std.fill_(0.5)
    atoms = random_glass(100, seed=3)
    values = np.random.default_rng(0).normal(-4.0, 1.0, (len(atoms), 1))
    g = graph_from_atoms(atoms, cfg.r_max, cfg.type_names, torch.float64)
    h = graph_features(model, g.species, g.edge_index, g.edge_vec, torch.from_numpy(values))
    h = h.numpy()
    x = (values[:, 0] + 4.0) / 0.5
    i, j, d = neighbor_list("ijd", atoms, cfg.r_max)
    col = model.dens_dim  # the input after the one-hot and the densities
    np.testing.assert_allclose(h[:, col], x, rtol=0, atol=1e-12)
    for b, length in enumerate(cfg.smooth_lengths, start=1):
        w = np.exp(-d / length) * _switch(d, cfg.r_max)
        ref = (x + np.bincount(i, w * x[j], len(atoms))) / (1 + np.bincount(i, w, len(atoms)))
        np.testing.assert_allclose(h[:, b * model.base_dim + col], ref, rtol=0, atol=1e-10)
    # the readout adds each input column times the Zr indicator
    feats = model.readout_features(torch.from_numpy(h)).numpy()
    zr = atoms.numbers == 40
    cols = [b * model.base_dim + col for b in range(4)]
    np.testing.assert_array_equal(feats[:, model.feature_dim :], h[:, cols] * zr[:, None])


def test_the_module_needs_its_inputs() -> None:
    model = build_model(tiny_config("ridge", node_inputs=["pe"])).eval()
    with torchscript_allowed():
        scripted = torch.jit.script(model)
    g = graph_from_atoms(random_glass(60, seed=1), 5.0, ["Cu", "Zr"], torch.float64)
    with pytest.raises(Exception, match="takes per-atom node inputs"):
        scripted(g.species, g.edge_index, g.edge_vec)
    with pytest.raises(Exception, match=r"node_inputs must be \[n_atoms, n_inputs\]"):
        scripted.embed(g.species, g.edge_index, g.edge_vec, torch.zeros(3, 1, dtype=torch.float64))
    out = scripted(g.species, g.edge_index, g.edge_vec, None, torch.zeros(60, 1).double())
    assert out.shape == (60,)


def test_export_without_the_declaration_or_wrapped_is_refused(tmp_path: Path) -> None:
    model = build_model(tiny_config("ridge", node_inputs=["pe"]))
    with pytest.raises(ValueError, match="node input.*cannot be wrapped"):
        export_model(model, tmp_path / "m.pt", ["Cu", "Zr"], 5.0)
    assert not (tmp_path / "m.pt").exists()


def test_the_exported_file_declares_its_inputs_and_their_stats(fitted: Path) -> None:
    loaded = load_model(fitted)
    spec = loaded.node_inputs
    assert spec is not None and spec.names == ("pe",)
    assert spec.potential == POTENTIAL and spec.pair_style == "eam/fs"
    with zipfile.ZipFile(fitted) as zf:
        raw = next(zf.read(n) for n in zf.namelist() if n.endswith("/extra/node_inputs"))
    assert json.loads(raw)["names"] == ["pe"]
    # stats: per species over the training glasses (g0, g1), not the validation one
    import ase.io

    folder = fitted.parent
    pe, symbols = [], []
    with LammpsPotential(POTENTIAL) as pot:
        for name in ("g0", "g1"):
            atoms = ase.io.read(folder / f"{name}.extxyz")
            pe.append(pot.energies(atoms))
            symbols += atoms.get_chemical_symbols()
    pe_all, symbols_a = np.concatenate(pe), np.array(symbols)
    for species in ("Cu", "Zr"):
        mean, std = spec.stats["pe"][species]
        assert mean == pytest.approx(pe_all[symbols_a == species].mean(), abs=1e-12)
        assert std == pytest.approx(pe_all[symbols_a == species].std(), abs=1e-12)


def test_load_refuses_a_broken_declaration(fitted: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="declares 0 per-atom input.*module takes 1"):
        load_model(with_metadata(fitted, tmp_path / "none.pt", node_inputs=None))
    with pytest.raises(ValueError, match="metadata `node_inputs` must be a JSON object"):
        load_model(with_metadata(fitted, tmp_path / "bad.pt", node_inputs="pe"))
    with pytest.raises(ValueError, match="metadata `node_inputs` is invalid.*unknown node input"):
        load_model(
            with_metadata(fitted, tmp_path / "u.pt", node_inputs='{"names": ["x"], "stats": {}}')
        )


def test_evaluate_scores_as_the_fit_and_is_exactly_invariant(fitted: Path) -> None:
    folder = fitted.parent
    res = evaluate_files(load_model(fitted), [str(folder / "g2.extxyz")], rotations=4)
    summary = json.loads((folder / "run" / "summary.json").read_text())
    assert res["pooled"]["pearson"] > 0.8
    assert res["pooled"]["pearson"] == pytest.approx(
        summary["valid"]["pooled"]["pearson"], abs=1e-9
    )
    assert res["rotations"]["spread_max_eV"] < 1e-6  # rotations and reflections


def test_config_errors_before_any_work(tmp_path: Path) -> None:
    write_pe_glasses(tmp_path, n_atoms=60)
    missing = pe_config(tmp_path, tmp_path / "a", node_inputs_potential=None)
    with pytest.raises(ValueError, match="needs data.node_inputs_potential"):
        fit_ridge(missing)
    plain = {k: v for k, v in MODEL.items() if k != "node_inputs"}
    with pytest.raises(ValueError, match="takes no node inputs"):
        fit_ridge(pe_config(tmp_path, tmp_path / "b", model=plain))
    with pytest.raises(ValueError, match=r"lacks the model's element\(s\) \['Zr'\]"):
        fit_ridge(pe_config(tmp_path, tmp_path / "c", node_inputs_potential="Cu_mishin1.eam.alloy"))
    with pytest.raises(FileNotFoundError, match="nope.eam.fs"):
        fit_ridge(pe_config(tmp_path, tmp_path / "d", node_inputs_potential="nope.eam.fs"))
    assert not any((tmp_path / r).exists() for r in "abcd")


def test_symgnn_train_fits_a_ridge_config(tmp_path: Path, capsys) -> None:
    write_pe_glasses(tmp_path, n_atoms=60)
    cfg = pe_config(tmp_path, tmp_path / "run")
    assert main(["train", str(cfg), "--no-progress"]) == 0
    assert "run folder" in capsys.readouterr().out
    assert (tmp_path / "run" / "best.pt").exists()
    assert "node_inputs" in torch.load(tmp_path / "run" / "best.pt", weights_only=False)


def test_wrappers_refuse_it(fitted: Path, tmp_path: Path, capsys) -> None:
    """A residual model or a smoothed one takes the structure only (an ensemble may hold a
    model with inputs: tests/python/potential/test_ensemble_inputs.py)."""
    for args, role in (
        (["residual", str(fitted), str(fitted), "-o", str(tmp_path / "r.pt")], "residual"),
        (["residual", str(fitted.parent / "run"), str(fitted), "-o", str(tmp_path / "r.pt")], ""),
        (["smooth", str(fitted), "--length", "2", "-o", str(tmp_path / "s.pt")], "smoothed"),
    ):
        assert main(args) != 0
        err = capsys.readouterr().err
        assert "cannot be a member" in err or "cannot be wrapped" in err, err
        assert role in err and "in an ensemble" in err, err
    assert not list(tmp_path.iterdir())


def test_explain_and_a_baseline_refuse_it_before_calling_the_module(fitted: Path) -> None:
    from symgnn_ase.explain.core import Explainer
    from symgnn_ase.train.datasets import load_on_graph

    with pytest.raises(ValueError, match="explain does not compute them"):
        Explainer.from_model(str(fitted), random_glass(60, seed=2))
    with pytest.raises(ValueError, match="data.baseline: .*takes per-atom inputs"):
        load_on_graph(str(fitted), "data.baseline", 5.0, ["Cu", "Zr"], "model", "same graph")


def test_the_python_train_fits_a_ridge_config_too(tmp_path: Path) -> None:
    """``symgnn_ase.train.train`` is the one entry for every kind, as the command is."""
    from symgnn_ase.train import train

    write_pe_glasses(tmp_path, n_atoms=60)
    cfg = pe_config(tmp_path, tmp_path / "run")
    out = train(cfg, progress=False)
    assert (out / "summary.json").exists() and (out / "best.pt").exists()
    with pytest.raises(ValueError, match="a ridge fit .* has nothing to resume"):
        train(cfg, resume=True)
