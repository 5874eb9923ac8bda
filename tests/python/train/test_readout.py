"""``freeze: body`` (train/readout.py): the readout alone trained on the frozen network of
``init``, started by ``symgnn train`` into a training run's folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from symgnn_ase.cli import main as cli
from symgnn_ase.export import load_model
from symgnn_ase.nn.factory import build_model
from symgnn_ase.testing import tiny_config
from symgnn_ase.train import atomic_save, load_checkpoint
from symgnn_ase.train.readout import fit_readout

from .helpers import RUN_FILES, run_config, write_config, write_labelled_glasses

HEADS = 4


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path]:
    """Tiny labelled glasses ``g0``..``g2`` and, in ``init/``, a one-head `length` checkpoint as
    a run folder holds it."""
    root = tmp_path_factory.mktemp("readout")
    write_labelled_glasses(root, 3, 90, seed=30)
    cfg = tiny_config("length")
    torch.manual_seed(2)
    model = build_model(cfg)
    with torch.no_grad():
        model.label_mean.fill_(1.6)
        model.label_std.fill_(0.2)
    (root / "init").mkdir()
    ckpt = {"model": model.state_dict(), "config": {"model": cfg.to_dict()}}
    atomic_save(ckpt, root / "init" / "best.pt")
    return root, root / "init"


@pytest.fixture(scope="module")
def data(setup) -> Path:
    return setup[0]


@pytest.fixture(scope="module")
def init(setup) -> Path:
    return setup[1]


def _config(data: Path, init: Path, run_dir: Path, changes: dict | None = None) -> Path:
    model = dict(tiny_config("length").to_dict(), readout_heads=HEADS)
    cfg = run_config(data, run_dir, model, {"epochs": 4, "lr": 1e-2}, seed=5)
    cfg.update(init=str(init), freeze="body")
    for key, value in (changes or {}).items():
        section, _, name = key.partition("__")
        if name:
            cfg[section][name] = value
        else:
            cfg[section] = value
    return write_config(run_dir.parent / f"{run_dir.name}.yaml", cfg)


def test_symgnn_train_fits_the_heads_on_the_frozen_body(data, init, tmp_path, capsys):
    cfg = _config(data, init, tmp_path / "run")
    assert cli(["train", str(cfg)]) == 0
    out = tmp_path / "run"
    assert f"run folder: {out}" in capsys.readouterr().out
    for name in sorted(RUN_FILES):
        assert (out / name).exists(), name
    start = load_checkpoint(init / "best.pt")["model"]
    best = load_checkpoint(out / "best.pt")
    assert best["config"]["freeze"] == "body"
    for key, value in best["model"].items():
        if key.startswith("decoder.") or key == "std_scale":
            continue
        assert torch.equal(value, start[key]), key  # the body is init's, bit for bit
    heads = [
        v for k, v in best["model"].items() if k.startswith("decoder.") and k.endswith(".weight")
    ][-1]
    assert heads.shape[0] == HEADS  # widened from one head, then trained
    assert not torch.equal(heads[0], heads[1])

    # exported like any shallow-ensemble run: an ensemble file of HEADS members
    model_path = tmp_path / "heads.pt"
    assert cli(["export", str(out), "-o", str(model_path)]) == 0
    loaded = load_model(model_path)
    assert loaded.ensemble_size == HEADS


def test_resume_continues_exactly(data, init, tmp_path):
    straight = fit_readout(_config(data, init, tmp_path / "a"))
    cfg_b = _config(data, init, tmp_path / "b")
    fit_readout(cfg_b, max_epochs=2)  # as if killed after epoch 2
    with pytest.raises(ValueError, match="already holds a run; pass --resume"):
        fit_readout(cfg_b)
    resumed = fit_readout(cfg_b, resume=True)
    a = load_checkpoint(straight / "last.pt")
    b = load_checkpoint(resumed / "last.pt")
    assert a["epoch"] == b["epoch"] == 4
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"init": None}, "`freeze: body` needs `init`"),
        ({"freeze": "everything"}, r"`freeze` must be one of \['body'\]"),
        ({"optim__position_noise": 0.1}, "optim.position_noise acts on the body's forward pass"),
        ({"optim__ema": 0.5}, "optim.ema acts on the body's forward pass"),
        ({"model__node_dim": 12}, "must be its configuration"),
    ],
)
def test_refusals_before_any_work(data, init, tmp_path, capsys, changes, message):
    cfg = _config(data, init, tmp_path / "run", changes)
    assert cli(["train", str(cfg)]) != 0
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


def test_cv_folds_train_the_readout_alone(data, init, tmp_path):
    """`symgnn cv` of a `freeze: body` config: each fold fits the heads on the frozen body of
    its own starting model (`init: .../{fold}`, as cross-validation requires)."""
    import shutil

    from symgnn_ase.train.cv import run_cv

    shutil.copytree(init, tmp_path / "inits" / "fold1_g1")
    cfg = _config(data, init, tmp_path / "unused", {"init": str(tmp_path / "inits" / "{fold}")})
    summary = run_cv(cfg, tmp_path / "cv", folds=["g1"], progress=False)
    assert summary["folds"] == 1
    run = tmp_path / "cv" / "fold1_g1" / "run"
    assert json.loads((run / "summary.json").read_text())["freeze"] == "body"
    start = load_checkpoint(init / "best.pt")["model"]
    best = load_checkpoint(run / "best.pt")["model"]
    assert torch.equal(best["encoder.mlp.0.weight"], start["encoder.mlp.0.weight"])
