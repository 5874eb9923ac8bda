"""Ensembles (``symgnn ensemble``): K models in one file keep the model contract (forward is the
mean, embed/interact/readout run layer by layer) and add the per-atom standard deviation, which
the calculator and ``symgnn predict`` report."""

from __future__ import annotations

import zipfile
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch

from symgnn_ase import SymGNNCalculator
from symgnn_ase.calculator import BARRIER_STD, BARRIERS
from symgnn_ase.cli import main
from symgnn_ase.compose.ensemble import build_ensemble, export_ensemble
from symgnn_ase.data.graph import graph_from_atoms
from symgnn_ase.export import export_model, load_model, torchscript_allowed
from symgnn_ase.format import ENSEMBLE_SIZE_KEY, METADATA_KEYS
from symgnn_ase.nn.factory import build_model
from symgnn_ase.testing import make_tiny_members, make_tiny_model, random_glass, tiny_config
from symgnn_ase.train.checkpoints import atomic_save


@pytest.fixture(scope="module")
def members(tmp_path_factory) -> list[str]:
    """Three tiny members of three kinds (the equivariant one has 3 layers, the others 4)."""
    return make_tiny_members(tmp_path_factory.mktemp("members"), seed=20)


@pytest.fixture(scope="module")
def ensemble(members, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ens") / "ens.pt"
    export_ensemble(members, path)
    return path


def _graph(model, seed: int = 4, n: int = 90):
    atoms = random_glass(n, seed=seed)
    return atoms, graph_from_atoms(atoms, model.r_max, model.type_names, model.dtype)


def test_forward_is_the_mean_and_forward_std_the_spread(members, ensemble) -> None:
    ens = load_model(ensemble)
    assert ens.ensemble_size == 3 and ens.is_ensemble
    assert ens.n_layers == 4
    assert ens.feature_dim == sum(load_model(m).feature_dim for m in members)
    assert ens.info["kind"] == "ensemble" and len(ens.info["members"]) == 3
    _, g = _graph(ens)
    # members and ensemble loaded the same way (outside inference_mode: weights loaded inside it
    # are inference tensors, which can take another matmul kernel, e.g. MKL's SGEMM with FMA)
    singles = [load_model(m).module for m in members]
    with torch.inference_mode():
        each = torch.stack([s(g.species, g.edge_index, g.edge_vec) for s in singles])
        mean = ens.module(g.species, g.edge_index, g.edge_vec)
        mean_std = ens.module.forward_std(g.species, g.edge_index, g.edge_vec)
        all_k = ens.module.forward_members(g.species, g.edge_index, g.edge_vec)
    # a member inside the ensemble is the same network on other copies of its weights: the same
    # numbers to round-off (MKL may round by memory alignment); docs/contracts.md, Determinism
    torch.testing.assert_close(all_k, each, rtol=0, atol=1e-6)
    # the same computation twice in one process: bit for bit
    assert torch.equal(mean, all_k.mean(0))
    assert mean_std.shape == (2, g.n_atoms)
    assert torch.equal(mean_std[0], all_k.mean(0))
    assert torch.equal(mean_std[1], all_k.std(0, unbiased=True))
    torch.testing.assert_close(mean_std[1], each.std(0, unbiased=True), rtol=0, atol=1e-6)
    assert bool((mean_std[1] > 0).all())


def test_layer_by_layer_gives_the_same_numbers(ensemble) -> None:
    """What the LAMMPS compute runs: embed, interact per layer, readout / readout_std."""
    ens = load_model(ensemble)
    _, g = _graph(ens, seed=5)
    m = ens.module
    with torch.inference_mode():
        h, e = m.embed(g.species, g.edge_index, g.edge_vec)
        assert h.shape == (g.n_atoms, ens.feature_dim)
        for layer in range(ens.n_layers):
            h, e = m.interact(layer, h, e, g.edge_index)
            assert h.shape[1] == ens.feature_dim
        layered = m.readout_std(h)
        direct = m.forward_std(g.species, g.edge_index, g.edge_vec)
        assert torch.allclose(m.readout(h), direct[0], rtol=0, atol=1e-6)
        assert torch.equal(m.readout_members(h).mean(0), m.readout(h))
    assert torch.allclose(layered, direct, rtol=0, atol=1e-6)


def test_members_from_run_folders_and_checkpoints(tmp_path: Path) -> None:
    cfgs = [tiny_config("length"), tiny_config("length", node_dim=8, heads=[2, 2, 1, 1])]
    sources = []
    for k, cfg in enumerate(cfgs):
        torch.manual_seed(k)
        model = build_model(cfg)
        ckpt = {"model": model.state_dict(), "config": {"model": cfg.to_dict(), "seed": k}}
        run = tmp_path / f"run{k}"
        run.mkdir()
        atomic_save(ckpt, run / "best.pt")
        sources.append(str(run) if k == 0 else str(run / "best.pt"))
    out = tmp_path / "ens.pt"
    rc = main(["ensemble", *sources, "-o", str(out), "--std-scale", "2.5"])
    assert rc == 0
    ens = load_model(out)
    assert ens.ensemble_size == 2 and ens.info["std_scale"] == 2.5
    _, g = _graph(ens, n=40)
    module, _ = build_ensemble(sources)  # eager, unscaled
    with torch.inference_mode():
        got = ens.module.forward_std(g.species, g.edge_index, g.edge_vec)
        ref = module.forward_std(g.species, g.edge_index, g.edge_vec)
    assert torch.allclose(got[0], ref[0], atol=1e-6)
    assert torch.allclose(got[1], 2.5 * ref[1], atol=1e-6)


def test_members_must_agree(members, tmp_path: Path, capsys) -> None:
    other_cut = tmp_path / "cut.pt"
    make_tiny_model(other_cut, "length", r_max=4.5)
    other_types = tmp_path / "types.pt"
    make_tiny_model(other_types, "length", type_names=["Zr", "Cu"])
    double = tmp_path / "double.pt"
    torch.manual_seed(0)
    cfg = tiny_config("length")
    export_model(build_model(cfg).double(), double, cfg.type_names, cfg.r_max)
    cases = [
        ([members[0], str(other_cut)], "must share r_max"),
        ([members[0], str(other_types)], "must share type_names"),
        ([members[0]], "at least 2 models"),
    ]
    for sources, message in cases:
        with pytest.raises(ValueError, match=message):
            export_ensemble(sources, tmp_path / "bad.pt")
        rc = main(["ensemble", *sources, "-o", str(tmp_path / "bad.pt")])
        assert rc == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "bad.pt").exists()
    # float32 and float64 members: the file is float64, each member computes in its own dtype
    # and gives what it gives alone (the float32 one on edge vectors cast from float64)
    mixed = export_ensemble([members[0], str(double)], tmp_path / "mixed.pt")
    loaded = load_model(mixed)
    assert loaded.dtype == torch.float64
    g = graph_from_atoms(random_glass(60, seed=4), 5.0, ["Cu", "Zr"], torch.float64)
    alone = [load_model(m) for m in (members[0], double)]
    with torch.no_grad():
        got = loaded.module.forward_members(g.species, g.edge_index, g.edge_vec)
        for k, m in enumerate(alone):
            own = m.module(g.species, g.edge_index, g.edge_vec.to(m.dtype)).double()
            assert torch.equal(got[k], own)


def test_an_ensemble_is_not_a_member(members, ensemble, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is itself an ensemble"):
        export_ensemble([str(ensemble), members[0]], tmp_path / "nested.pt")


def test_metadata_and_its_checks(members, ensemble, tmp_path: Path) -> None:
    extra = dict.fromkeys((*METADATA_KEYS, ENSEMBLE_SIZE_KEY), "")
    with torchscript_allowed():
        torch.jit.load(str(ensemble), _extra_files=extra)
    assert extra[ENSEMBLE_SIZE_KEY] in (b"3", "3")
    assert load_model(members[0]).ensemble_size == 1
    # a single model claiming to be an ensemble, and a bad size
    for value, message in (("3", "has no forward_std"), ("1", "must be an integer >= 2")):
        bad = tmp_path / f"bad{value}.pt"
        with zipfile.ZipFile(members[0]) as src, zipfile.ZipFile(bad, "w") as dst:
            prefix = src.namelist()[0].split("/")[0]
            for item in src.infolist():
                dst.writestr(item, src.read(item.filename))
            dst.writestr(f"{prefix}/extra/{ENSEMBLE_SIZE_KEY}", value)
        with pytest.raises(ValueError, match=message):
            load_model(bad)


def test_calculator_reports_the_std(members, ensemble) -> None:
    atoms = random_glass(70, seed=6)
    calc = SymGNNCalculator(str(ensemble))
    assert BARRIER_STD in calc.implemented_properties
    atoms.calc = calc
    mean = calc.get_property(BARRIERS, atoms)
    std = calc.get_property(BARRIER_STD, atoms)
    assert calc.n_barrier_evaluations == 1  # one model call gives both
    assert mean.dtype == np.float64 and std.dtype == np.float64 and std.shape == (70,)
    each = np.stack([SymGNNCalculator(m).get_property(BARRIERS, atoms) for m in members])
    assert np.abs(mean - each.mean(0)).max() < 1e-6
    assert np.abs(std - each.std(0, ddof=1)).max() < 1e-6
    # a new configuration recomputes both
    atoms.positions[0] += 0.05
    std2 = calc.get_property(BARRIER_STD, atoms)
    assert calc.n_barrier_evaluations == 2 and not np.array_equal(std, std2)
    # with a single model there is no std
    single = SymGNNCalculator(members[0])
    assert BARRIER_STD not in single.implemented_properties
    atoms.calc = single
    with pytest.raises(Exception, match="energy_barrier_std"):
        single.get_property(BARRIER_STD, atoms)


def test_calculator_interval_keeps_the_std(ensemble) -> None:
    from ase.calculators.emt import EMT

    atoms = random_glass(40, seed=7, zr_fraction=0.0)  # EMT knows Cu, not Zr
    calc = SymGNNCalculator(str(ensemble), base=EMT(), barrier_interval=1)
    atoms.calc = calc
    atoms.get_potential_energy()
    assert BARRIERS in calc.results and BARRIER_STD in calc.results


def test_predict_writes_the_std_column(members, ensemble, tmp_path: Path, capsys) -> None:
    frames = [random_glass(30, seed=8), random_glass(40, seed=9)]
    for f in frames:
        f.arrays["energy_barrier"] = np.full(len(f), 1.6)  # a label: not overwritten
    src = tmp_path / "in.extxyz"
    ase.io.write(src, frames)
    out = tmp_path / "out.extxyz"
    rc = main(["predict", "--no-progress", "--model", str(ensemble), str(src), "-o", str(out)])
    stdout = capsys.readouterr().out
    assert rc == 0
    assert "ensemble std mean" in stdout
    got = ase.io.read(out, ":")
    for atoms, ref in zip(got, frames, strict=True):
        assert np.allclose(atoms.arrays["energy_barrier"], 1.6)
        calc = SymGNNCalculator(str(ensemble))
        assert np.allclose(atoms.arrays["energy_barrier_pred"], calc.get_property(BARRIERS, ref))
        assert np.allclose(atoms.arrays["energy_barrier_pred_std"], calc.results[BARRIER_STD])
        assert set(atoms.info["symgnn_predictions"].split()) == {
            "energy_barrier_pred",
            "energy_barrier_pred_std",
        }
    # predicting again on the output replaces the predictions, keeps the label
    again = tmp_path / "again.extxyz"
    assert (
        main(["predict", "--no-progress", "--model", str(ensemble), str(out), "-o", str(again)])
        == 0
    )
    capsys.readouterr()
    atoms = ase.io.read(again, 0)
    assert {"energy_barrier", "energy_barrier_pred", "energy_barrier_pred_std"} <= set(atoms.arrays)
    # a single model writes no std column
    single = tmp_path / "single.extxyz"
    assert (
        main(["predict", "--no-progress", "--model", members[0], str(src), "-o", str(single)]) == 0
    )
    assert "energy_barrier_pred_std" not in ase.io.read(single, 0).arrays


def test_predict_refuses_to_overwrite_a_std_label(ensemble, tmp_path: Path, capsys) -> None:
    atoms = random_glass(30, seed=10)
    atoms.arrays["energy_barrier_std"] = np.full(len(atoms), 0.1)  # someone's own array
    src = tmp_path / "in.extxyz"
    ase.io.write(src, atoms)
    rc = main(
        [
            "predict",
            "--no-progress",
            "--strict",
            "--model",
            str(ensemble),
            str(src),
            "-o",
            str(tmp_path / "o.xyz"),
        ]
    )
    assert rc == 2
    assert "`energy_barrier_std` that is not a symgnn prediction" in capsys.readouterr().err
