"""An ensemble whose members may take per-atom inputs from the potential (metadata
``node_inputs``, issue 27): a tiny ``length`` network without inputs and a tiny ridge with the
per-atom energy. The file declares the inputs, its mean and spread are those of the members'
own predictions, the layer-by-layer path (the LAMMPS compute's) takes the inputs in ``embed``
only, and members whose inputs differ are refused naming both."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from symgnn_ase.calculator import BARRIER_STD, BARRIERS, SymGNNCalculator
from symgnn_ase.cli import main
from symgnn_ase.compose.ensemble import Ensemble, EnsembleInputs, build_ensemble, export_ensemble
from symgnn_ase.data.graph import graph_from_atoms
from symgnn_ase.export import load_model
from symgnn_ase.potential.lammps import LammpsPotential
from symgnn_ase.testing import make_tiny_model, random_glass
from symgnn_ase.train.evaluate import evaluate_files

from .node_inputs_helpers import POTENTIAL, fit_pe_ridge, with_metadata

TOL = 1e-6  # eV


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """ "net": a tiny length network (no inputs), "pe": a float32 ridge with the per-atom
    energy (the networks' dtype), "ens": their ensemble."""
    folder = tmp_path_factory.mktemp("ens_inputs")
    pe = fit_pe_ridge(folder, dtype="float32")
    net = folder / "net.pt"
    make_tiny_model(net, kind="length", seed=3)
    ens = export_ensemble([str(net), str(pe)], folder / "ens.pt")
    return {"net": net, "pe": pe, "ens": ens, "folder": folder}


def _barriers(model: Path, atoms) -> tuple[np.ndarray, np.ndarray | None]:
    calc = SymGNNCalculator(str(model))
    try:
        out = np.asarray(calc.get_property(BARRIERS, atoms), dtype=np.float64)
        return out, calc.results.get(BARRIER_STD)
    finally:
        calc.close()


def test_the_file_declares_the_inputs(parts) -> None:
    ens, pe = load_model(parts["ens"]), load_model(parts["pe"])
    assert ens.is_ensemble and ens.ensemble_size == 2 and ens.info["kind"] == "ensemble"
    assert ens.node_inputs == pe.node_inputs  # names, potential, pair style and stats
    assert ens.module.n_inputs == 1
    schema = str(ens.module.embed.schema)
    assert schema.count("Tensor") >= 5 and "node_inputs" in schema
    assert type(build_ensemble([str(parts["net"]), str(parts["pe"])])[0]) is EnsembleInputs
    module, _ = build_ensemble([str(parts["net"]), str(parts["net"])])
    assert type(module) is Ensemble  # without members that take inputs: as before


def test_mean_and_spread_are_the_members(parts) -> None:
    atoms = random_glass(150, seed=8)
    net, _ = _barriers(parts["net"], atoms)
    pe, _ = _barriers(parts["pe"], atoms)
    mean, std = _barriers(parts["ens"], atoms)
    np.testing.assert_allclose(mean, (net + pe) / 2, rtol=0, atol=TOL)
    np.testing.assert_allclose(std, np.abs(net - pe) / np.sqrt(2), rtol=0, atol=TOL)
    assert np.abs(net - pe).max() > 100 * TOL  # the members differ: the check could fail


def test_the_module_takes_the_inputs_in_embed_and_as_5th_argument(parts) -> None:
    ens = load_model(parts["ens"])
    atoms = random_glass(90, seed=9)
    g = graph_from_atoms(atoms, ens.r_max, ens.type_names, ens.dtype)
    with LammpsPotential(POTENTIAL) as pot:
        x = torch.from_numpy(pot.energies(atoms)[:, None])
    m = ens.module
    with pytest.raises(Exception, match="takes per-atom node inputs"):
        m(g.species, g.edge_index, g.edge_vec)
    with pytest.raises(Exception, match="takes per-atom node inputs"):
        m.forward_std(g.species, g.edge_index, g.edge_vec)
    with torch.inference_mode():
        each = m.forward_members(g.species, g.edge_index, g.edge_vec, None, x)
        both = m.forward_std(g.species, g.edge_index, g.edge_vec, None, x)
        mean = m(g.species, g.edge_index, g.edge_vec, None, x)
        h, e = m.embed(g.species, g.edge_index, g.edge_vec, x)  # the LAMMPS compute's path
        for layer in range(ens.n_layers):
            h, e = m.interact(layer, h, e, g.edge_index)
        layered = m.readout_std(h)
        own = load_model(parts["pe"]).module(g.species, g.edge_index, g.edge_vec, None, x)
    assert each.shape == (2, len(atoms))
    torch.testing.assert_close(each[1], own, rtol=0, atol=TOL)
    torch.testing.assert_close(both[0], mean, rtol=0, atol=TOL)
    torch.testing.assert_close(layered, both, rtol=0, atol=TOL)


def test_run_folders_evaluate_and_relax(parts, tmp_path: Path) -> None:
    folder = parts["folder"]
    ens = load_model(parts["ens"])
    res = evaluate_files(ens, [str(folder / "g2.extxyz")], rotations=2)
    assert np.isfinite(res["pooled"]["pearson"])
    assert res["rotations"]["spread_max_eV"] < 1e-4  # float32 networks, exactly invariant inputs
    # the ridge's run folder as a member: the checkpoint's record of its inputs
    from_run = export_ensemble([str(parts["net"]), str(folder / "run")], tmp_path / "r.pt")
    assert load_model(from_run).node_inputs == ens.node_inputs
    atoms = random_glass(80, seed=10)
    np.testing.assert_allclose(
        _barriers(from_run, atoms)[0], _barriers(parts["ens"], atoms)[0], rtol=0, atol=TOL
    )
    relaxed = tmp_path / "relaxed.pt"
    args = ["--steps", "2", "--alpha", "0.12", "--cap", "0.3", "--potential", POTENTIAL]
    assert main(["relax", str(parts["ens"]), *args, "-o", str(relaxed)]) == 0
    loaded = load_model(relaxed)
    assert loaded.relax.steps == 2 and loaded.node_inputs == ens.node_inputs
    assert np.isfinite(_barriers(relaxed, atoms)[0]).all()


def test_members_with_other_inputs_are_refused(parts, tmp_path: Path, capsys) -> None:
    spec = json.loads(load_model(parts["pe"]).node_inputs.to_json())
    for key, value in (("potential", "Other.eam.fs"), ("pair_style", "eam/alloy")):
        other = with_metadata(
            parts["pe"], tmp_path / f"{key}.pt", node_inputs=json.dumps({**spec, key: value})
        )
        sources = [str(parts["net"]), str(parts["pe"]), str(other)]
        with pytest.raises(ValueError, match=rf"pe\.pt and .*{key}\.pt take different.*{key}"):
            build_ensemble(sources)
        out = tmp_path / "e.pt"
        assert main(["ensemble", *sources, "-o", str(out)]) != 0
        err = capsys.readouterr().err
        assert f"'{value}'" in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()


def test_a_float32_member_with_inputs_beside_a_float64_one_is_refused(
    parts, tmp_path: Path, capsys
) -> None:
    """A float32 member runs behind InFloat64, which does not pass node inputs: refused."""
    from symgnn_ase.export import export_model
    from symgnn_ase.nn.factory import build_model
    from symgnn_ase.testing import tiny_config

    double = tmp_path / "double.pt"
    torch.manual_seed(0)
    cfg = tiny_config("length")
    export_model(build_model(cfg).double(), double, cfg.type_names, cfg.r_max)
    sources = [str(double), str(parts["pe"])]
    with pytest.raises(ValueError, match=r"pe\.pt is float32 and takes per-atom inputs"):
        build_ensemble(sources)
    out = tmp_path / "e.pt"
    assert main(["ensemble", *sources, "-o", str(out)]) != 0
    err = capsys.readouterr().err
    assert "fit it in float64 (model.dtype)" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
