"""Training data options: groups with weights and per-epoch samples, several validation files,
partial (NaN) labels, label checks, `init` fine-tuning, resume against changed data, config
checks by type and range."""

from __future__ import annotations

import shutil
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch

from symgnn_ase.train import load_checkpoint, load_config, train

from .helpers import run_config, write_config, write_labelled_glasses

MODEL = {"kind": "length", "node_dim": 8, "edge_dim": 8, "heads": [2, 2, 1, 1], "decoder_dim": 8}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    for k, atoms in enumerate(write_labelled_glasses(folder, 3, 90, seed=40)):
        # two "thermal" frames of the same glass, same labels
        rng = np.random.default_rng(k)
        frames = []
        for _ in range(2):
            hot = atoms.copy()
            hot.positions += rng.normal(0.0, 0.08, hot.positions.shape)
            frames.append(hot)
        ase.io.write(folder / f"g{k}_T600.extxyz", frames)
    return folder


def _cfg(data: Path, run_dir: Path, **extra) -> dict:
    cfg = run_config(data, run_dir, dict(MODEL), {"epochs": 2, "lr": 3e-3})
    cfg.update(extra)
    return cfg


def test_groups_and_several_validation_files(data, tmp_path):
    cfg = _cfg(data, tmp_path / "run")
    cfg["data"]["train"].append(
        {"files": [str(data / "g[01]_T600.extxyz")], "weight": 0.5, "frames_per_epoch": 3}
    )
    cfg["data"]["valid"] = [str(data / "g2.extxyz"), str(data / "g2_T600.extxyz")]
    cfg["data"]["selection"] = "mean"
    out = train(write_config(tmp_path / "c.yaml", cfg), progress=False)
    best = load_checkpoint(out / "best.pt")
    sets = best["metrics"]["sets"]
    assert list(sets) == ["g2.extxyz", "g2_T600.extxyz"]
    assert sets["g2_T600.extxyz"]["n"] == 180  # both frames pooled
    assert best["metrics"]["score"] == pytest.approx(
        (sets["g2.extxyz"]["pearson"] + sets["g2_T600.extxyz"]["pearson"]) / 2
    )
    # the glob expanded to both thermal files, hashed for resuming
    assert {"g0_T600.extxyz", "g1_T600.extxyz", "g2_T600.extxyz"} <= set(best["data_sha256"])
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert "pearson:g2_T600.extxyz" in header and "pred_std:g2_T600.extxyz" in header


def test_group_sampling_takes_the_asked_number(data):
    from symgnn_ase.train.datasets import TrainGroup, epoch_order

    groups = [
        TrainGroup(files=[], graphs=[None] * 2),
        TrainGroup(files=[], graphs=[None] * 10, frames_per_epoch=3),
    ]
    gen = torch.Generator().manual_seed(0)
    order = epoch_order(groups, gen)
    assert sorted(k for g, k in order if g == 0) == [0, 1]
    picked = [k for g, k in order if g == 1]
    assert len(picked) == 3 and len(set(picked)) == 3
    # seeded: the same generator state gives the same epoch
    assert epoch_order(groups, torch.Generator().manual_seed(0)) == order


def test_nan_label_is_refused_unless_partial(data, tmp_path):
    atoms = ase.io.read(data / "g0.extxyz")
    atoms.arrays["energy_barrier"][[5, 17]] = np.nan
    ase.io.write(tmp_path / "part.extxyz", atoms)
    cfg = _cfg(data, tmp_path / "r1")
    cfg["data"]["train"] = [str(tmp_path / "part.extxyz")]
    with pytest.raises(ValueError, match=r"part.extxyz: label `energy_barrier` of atom 5 is nan"):
        train(write_config(tmp_path / "a.yaml", cfg), progress=False)
    assert not (tmp_path / "r1" / "best.pt").exists()
    cfg["data"]["partial_labels"] = True
    out = train(write_config(tmp_path / "b.yaml", cfg), progress=False)
    assert np.isfinite(load_checkpoint(out / "best.pt")["metrics"]["score"])
    rows = (out / "metrics.csv").read_text().splitlines()[1:]
    assert all("nan" not in r.split(",")[1] for r in rows)  # train loss finite


def test_label_out_of_range_and_all_unlabelled(data, tmp_path):
    atoms = ase.io.read(data / "g0.extxyz")
    atoms.arrays["energy_barrier"][3] = 250.0
    ase.io.write(tmp_path / "big.extxyz", atoms)
    cfg = _cfg(data, tmp_path / "r")
    cfg["data"]["valid"] = str(tmp_path / "big.extxyz")
    with pytest.raises(ValueError, match=r"big.extxyz: label `energy_barrier` of atom 3 is 250"):
        train(write_config(tmp_path / "a.yaml", cfg), progress=False)
    atoms.arrays["energy_barrier"][:] = np.nan
    ase.io.write(tmp_path / "none.extxyz", atoms)
    cfg["data"]["valid"] = str(tmp_path / "none.extxyz")
    cfg["data"]["partial_labels"] = True
    with pytest.raises(ValueError, match="none.extxyz: no atom carries a finite"):
        train(write_config(tmp_path / "b.yaml", cfg), progress=False)


def test_init_from_a_run_and_from_an_exported_file(data, tmp_path):
    from symgnn_ase.cli import main as cli

    base = train(
        write_config(tmp_path / "base.yaml", _cfg(data, tmp_path / "base")), progress=False
    )
    start = load_checkpoint(base / "best.pt")["model"]
    cfg = _cfg(data, tmp_path / "ft", init=str(base))
    del cfg["model"]  # taken from the init model
    cfg["optim"]["epochs"] = 1
    cfg["optim"]["lr"] = 1e-9  # (nearly) no step: the weights stay those of the init run
    out = train(write_config(tmp_path / "ft.yaml", cfg), progress=False)
    tuned = load_checkpoint(out / "best.pt")
    assert tuned["config"]["model"]["kind"] == "length"
    assert torch.allclose(tuned["model"]["label_mean"], start["label_mean"])
    key = "embedding.weight"
    assert torch.allclose(tuned["model"][key], start[key], atol=1e-6)
    # an exported file works as init too
    assert cli(["export", str(base), "-o", str(tmp_path / "m.pt")]) == 0
    cfg2 = _cfg(data, tmp_path / "ft2", init=str(tmp_path / "m.pt"))
    del cfg2["model"]
    cfg2["optim"]["epochs"] = 1
    out2 = train(write_config(tmp_path / "ft2.yaml", cfg2), progress=False)
    assert (out2 / "best.pt").exists()
    # a model section that disagrees with the init model is refused
    cfg3 = _cfg(data, tmp_path / "ft3", init=str(base))
    cfg3["model"]["node_dim"] = 16
    cfg3["model"]["heads"] = [2, 2, 1, 1]
    with pytest.raises(ValueError, match="model configuration differs"):
        train(write_config(tmp_path / "ft3.yaml", cfg3), progress=False)
    with pytest.raises(FileNotFoundError, match="init: no model"):
        train(
            write_config(tmp_path / "ft4.yaml", _cfg(data, tmp_path / "x", init="nope")),
            progress=False,
        )
    # an ensemble file (the bundled default is one) is named as such
    from symgnn_ase.compose.ensemble import export_ensemble

    export_ensemble([str(tmp_path / "m.pt"), str(tmp_path / "m.pt")], tmp_path / "ens.pt")
    cfg5 = _cfg(data, tmp_path / "ft5", init=str(tmp_path / "ens.pt"))
    with pytest.raises(ValueError, match="of kind `ensemble` .* give one model"):
        train(write_config(tmp_path / "ft5.yaml", cfg5), progress=False)


def test_resume_refuses_changed_data_and_settings(data, tmp_path):
    work = tmp_path / "d"
    shutil.copytree(data, work)
    cfg = _cfg(work, tmp_path / "run")
    path = write_config(tmp_path / "c.yaml", cfg)
    train(path, progress=False, max_epochs=1)
    # extending a run is allowed
    cfg["optim"]["epochs"] = 3
    write_config(path, cfg)
    train(path, resume=True, progress=False, max_epochs=2)
    # replacing a training file after a kill is refused
    atoms = ase.io.read(work / "g1.extxyz")
    atoms.arrays["energy_barrier"] += 0.1
    ase.io.write(work / "g1.extxyz", atoms)
    with pytest.raises(ValueError, match=r"data changed since the run started \(g1.extxyz\)"):
        train(path, resume=True, progress=False)
    out = train(path, resume=True, progress=False, allow_changes=True)
    assert load_checkpoint(out / "last.pt")["epoch"] == 3
    cfg["optim"]["lr"] = 0.5
    write_config(path, cfg)
    with pytest.raises(ValueError, match=r"config changed in optim.lr"):
        train(path, resume=True, progress=False, allow_changes=False)


BAD_CONFIGS = [
    ("optim: {lr: fast}", r"`optim.lr` must be a number in \(0, 1\], got 'fast'"),
    ("optim: {epochs: -5}", r"`optim.epochs` must be an integer >= 1, got -5"),
    ("optim: {epochs: 2.5}", r"`optim.epochs` must be an integer, got 2.5"),
    ("optim: {compile: maybe}", r"`optim.compile` must be true or false, got 'maybe'"),
    ("optim: {max_minutes: 0}", r"`optim.max_minutes` must be a number > 0, got 0"),
    ("optim: [1, 2]", r"`optim` must be a mapping"),
    ("seed: abc", r"`seed` must be an integer, got 'abc'"),
    ("threads: -1", r"`threads` must be an integer >= 0, got -1"),
    ("model: {r_max: 5A}", r"model.r_max must be a finite number, got '5A'"),
    ("model: {node_dim: 0}", r"model.node_dim must be >= 1, got 0"),
    ("model: {n_layers: x}", r"model.n_layers must be an integer, got 'x'"),
    ("model: {type_names: []}", r"type_names must be distinct and non-empty"),
    ("model: {kind: gcn}", r"model kind must be one of"),
    ("init: 3", r"`init` must be a model file"),
    ("data: {train: [], valid: v.extxyz}", r"`data.train` must be a list of files"),
    ("data: {train: [a.extxyz], valid: 7}", r"`data.valid` must be a file name"),
    ("data: {train: [a.extxyz], valid: v, selection: best}", r"`data.selection` must be one of"),
    ("data: {train: [a.extxyz], valid: v, label_range: [2, 1]}", r"`data.label_range` must be"),
    ("data: {train: [{files: a, weight: -1}], valid: v}", r"`data.train\[0\].weight` must be"),
    ("data: {train: [{files: a, frames_per_epoch: 0}], valid: v}", r"frames_per_epoch` must be"),
    ("data: {train: [{file: a}], valid: v}", r"unknown key\(s\) \['file'\] in data.train\[0\]"),
    ("data: {train: [a], valid: v, weights: 1}", r"unknown data key\(s\) \['weights'\]"),
    ("data: {train: [a], valid: v\n  broken: [", r"not valid YAML"),
]


@pytest.mark.parametrize("text, message", BAD_CONFIGS)
def test_config_is_checked_by_type_and_range(tmp_path, text, message):
    base = "data: {train: [a.extxyz], valid: v.extxyz}\n"
    body = text if text.startswith("data:") else base + text
    path = tmp_path / "bad.yaml"
    path.write_text(body + "\n")
    with pytest.raises(ValueError, match=message) as info:
        load_config(path)
    assert "bad.yaml" in str(info.value)  # the file is named


def test_glob_without_match_is_an_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {train: [nothing_*.extxyz], valid: v.extxyz}\nmodel: {kind: length}\n")
    cfg = load_config(path)
    with pytest.raises(FileNotFoundError, match=r"no file matches the pattern 'nothing_\*.extxyz'"):
        train(path, progress=False)
    assert cfg["data"]["train"][0]["files"] == ["nothing_*.extxyz"]


def test_freeze_norm_keeps_running_statistics(data, tmp_path):
    base = train(write_config(tmp_path / "b.yaml", _cfg(data, tmp_path / "b")), progress=False)
    start = load_checkpoint(base / "best.pt")["model"]
    cfg = _cfg(data, tmp_path / "f", init=str(base))
    del cfg["model"]
    cfg["optim"]["freeze_norm"] = True
    out = train(write_config(tmp_path / "f.yaml", cfg), progress=False)
    last = load_checkpoint(out / "last.pt")["model"]
    stats = [k for k in start if k.endswith(("running_mean", "running_var"))]
    assert stats  # the EGAT layers standardize their attention aggregate
    for k in stats:
        assert torch.equal(last[k], start[k]), k
    # the weights did train
    assert not torch.equal(last["embedding.weight"], start["embedding.weight"])


def test_recalibrate_norm_averages_over_training_frames(data, tmp_path):
    base = train(write_config(tmp_path / "b.yaml", _cfg(data, tmp_path / "b")), progress=False)
    start = load_checkpoint(base / "best.pt")["model"]
    cfg = _cfg(data, tmp_path / "r", init=str(base))
    del cfg["model"]
    cfg["optim"].update(recalibrate_norm=True, freeze_norm=True, epochs=1)
    cfg["data"]["train"] = [str(data / "g0_T600.extxyz")]
    out = train(write_config(tmp_path / "r.yaml", cfg), progress=False)
    last = load_checkpoint(out / "last.pt")["model"]
    key = next(k for k in last if k.endswith("running_var"))
    assert not torch.equal(last[key], start[key])  # recomputed on the new frames, then frozen
    assert int(last[key.replace("running_var", "num_batches_tracked")]) == 2  # two frames
