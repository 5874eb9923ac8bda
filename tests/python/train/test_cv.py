"""Leave-one-glass-out cross-validation (`symgnn cv`): no fold ever trains or early-stops on
the glass it scores, folds resume, and the summary is the folds' mean and spread."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from symgnn_ase.train.config import load_config
from symgnn_ase.train.cv import fold_plan, glass_key, run_cv

from .helpers import write_labelled_glasses


def _config(folder: Path, files: dict[str, list[str]], model: dict) -> Path:
    cfg = {
        "run_dir": str(folder / "unused"),
        "seed": 1,
        "threads": 1,
        "data": {
            "train": [
                {"files": files["train"], "weight": 1.0},
                {"files": files["extra"], "weight": 0.5},
            ],
            "valid": files["valid"],
        },
        "model": model,
        "optim": {"epochs": 1, "lr": 1e-3},
    }
    path = folder / "cv.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_glass_key_groups_derived_frames():
    assert glass_key("/d/train0.extxyz") == "train0"
    assert glass_key("train0_T300.extxyz.gz") == "train0"
    assert glass_key("valid_T600.extxyz.gz") == "valid"


def test_no_fold_sees_its_glass(tmp_path):
    glasses = [f"g{k}" for k in range(5)]
    for name in glasses:
        for suffix in ("", "_T300"):
            (tmp_path / f"{name}{suffix}.extxyz").write_text("")
    files = {
        "train": [str(tmp_path / f"{g}.extxyz") for g in glasses[:4]],
        "extra": [str(tmp_path / f"{g}_T300.extxyz") for g in glasses],
        "valid": [str(tmp_path / "g4.extxyz")],
    }
    cfg = load_config(_config(tmp_path, files, {"kind": "length"}))
    plan = fold_plan(cfg)
    assert [f["held_out"] for f in plan] == glasses
    for fold in plan:
        train = [f for g in fold["train_groups"] for f in g["files"]]
        keys = {glass_key(f) for f in train}
        assert fold["held_out"] not in keys and fold["inner_valid"] not in keys
        assert {glass_key(f) for f in fold["valid"]} == {fold["inner_valid"]}
        assert Path(fold["valid"][0]).name == f"{fold['inner_valid']}.extxyz"
        assert {glass_key(f) for f in fold["test"]} == {fold["held_out"]}
        assert len(fold["test"]) == 2
        # every other glass trains, with the config's group weights kept
        assert keys == set(glasses) - {fold["held_out"], fold["inner_valid"]}
        assert [g["weight"] for g in fold["train_groups"]] == [1.0, 0.5]
    # the validation glass's own file trains, in the first group, where it is not scored
    assert str(tmp_path / "g4.extxyz") in plan[0]["train_groups"][0]["files"]


def test_cv_refuses_a_model_trained_on_every_glass(tmp_path):
    write_labelled_glasses(tmp_path, 3, 60, seed=5)
    files = {
        "train": [str(tmp_path / "g0.extxyz"), str(tmp_path / "g1.extxyz")],
        "extra": [str(tmp_path / "g1.extxyz")],
        "valid": [str(tmp_path / "g2.extxyz")],
    }
    path = _config(tmp_path, files, {"kind": "length"})
    cfg = yaml.safe_load(path.read_text())
    cfg["init"] = "symgnn_length"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match="init: symgnn_length.*leak"):
        run_cv(path, tmp_path / "cv")


def _small_study(tmp_path: Path, seed: int) -> Path:
    """Three glasses g0, g1, g2 and a config of a tiny `length` network on them."""
    write_labelled_glasses(tmp_path, 3, 80, seed=seed)
    files = {
        "train": [str(tmp_path / "g0.extxyz"), str(tmp_path / "g1.extxyz")],
        "extra": [str(tmp_path / "g0.extxyz")],
        "valid": [str(tmp_path / "g2.extxyz")],
    }
    model = {"kind": "length", "node_dim": 8, "edge_dim": 8, "heads": [2, 1], "n_layers": 2}
    return _config(tmp_path, files, model)


def test_cv_runs_scores_and_resumes(tmp_path):
    path = _small_study(tmp_path, seed=11)
    out = tmp_path / "cv"
    with pytest.raises(ValueError, match=r"--folds: unknown glass\(es\) \['g9'\]"):
        run_cv(path, out, folds=["g9"], progress=False)
    first = run_cv(path, out, folds=["g1"], progress=False)
    assert first["folds"] == 1 and list(first["per_fold"]) == ["g1"]
    score = json.loads((out / "fold1_g1" / "score.json").read_text())
    assert set(score["train_files"]) == {str((tmp_path / "g0.extxyz").resolve())}  # g2 scores
    assert score["inner_valid"] == "g2"
    stamp = (out / "fold1_g1" / "score.json").stat().st_mtime_ns
    summary = run_cv(path, out, progress=False)
    assert summary["folds"] == 3
    assert (out / "fold1_g1" / "score.json").stat().st_mtime_ns == stamp  # not redone
    values = list(summary["per_fold"].values())
    assert summary["pearson_mean"] == pytest.approx(sum(values) / 3)
    assert json.loads((out / "cv.json").read_text())["folds"] == 3


def test_each_fold_starts_from_its_own_model_and_never_its_glass(tmp_path):
    """``init: .../{fold}/run``: each fold continues the same fold of an earlier study; a
    checkpoint trained on the held-out glass is refused before the fold trains."""
    path = _small_study(tmp_path, seed=13)
    first = tmp_path / "first"
    run_cv(path, first, folds=["g1"], progress=False)
    cfg = yaml.safe_load(path.read_text())
    cfg["init"] = str(first / "{fold}" / "run")
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(FileNotFoundError, match=r"fold g0 starts from .*fold0_g0/run/best.pt"):
        run_cv(path, tmp_path / "second", folds=["g0"], progress=False)
    summary = run_cv(path, tmp_path / "second", folds=["g1"], progress=False)
    assert summary["folds"] == 1
    fold_cfg = yaml.safe_load((tmp_path / "second" / "fold1_g1" / "config.yaml").read_text())
    assert fold_cfg["init"] == str(first / "fold1_g1" / "run")
    # a starting model that saw the held-out glass: fold g1 from fold g0's model (trained on g1)
    import shutil

    shutil.copytree(first / "fold1_g1", first / "fold0_g0")
    ckpt = first / "fold0_g0" / "run" / "best.pt"
    import torch

    state = torch.load(ckpt, weights_only=False)
    state["data_sha256"] = {"g0.extxyz": "0" * 64}
    torch.save(state, ckpt)
    with pytest.raises(ValueError, match=r"trained on \['g0.extxyz'\], of glass g0"):
        run_cv(path, tmp_path / "third", folds=["g0"], progress=False)
