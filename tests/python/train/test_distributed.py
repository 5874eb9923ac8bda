"""Training on several processes (``torchrun --nproc_per_node 2 -m symgnn_ase train CONFIG``,
gloo on CPU): 2 processes give the weights of 1 process with the same ``frames_per_step``, only
rank 0 writes the run folder, and a run resumes under either number of processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from symgnn_ase.train import load_checkpoint, train

from .helpers import RUN_FILES, run_config, write_config, write_labelled_glasses

TORCHRUN = Path(sys.executable).parent / "torchrun"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    write_labelled_glasses(folder, 6, 48, seed=40)
    return folder


def _config(data: Path, run_dir: Path, epochs: int, frames_per_step: int = 2) -> Path:
    """symgnn kind (sampled transforms, batch norm) with position noise and weight averaging:
    every source of randomness and every running statistic the loop has."""
    model = {"kind": "symgnn", "node_dim": 8, "edge_dim": 8, "n_layers": 2, "heads": [2, 1]}
    model["decoder_dim"] = 8
    optim = {"epochs": epochs, "lr": 3e-3, "position_noise": 0.02, "ema": 0.5}
    optim["frames_per_step"] = frames_per_step
    cfg = run_config(data, run_dir, model, optim, n_train=5)
    return write_config(run_dir.parent / f"{run_dir.name}-{epochs}.yaml", cfg)


def _torchrun(config: Path, *extra: str, nproc: int = 2) -> subprocess.CompletedProcess:
    if not TORCHRUN.exists():
        pytest.fail(f"no torchrun next to {sys.executable}: the torch package installs it")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [
        str(TORCHRUN),
        "--nproc_per_node",
        str(nproc),
        "--standalone",  # a free port on this machine: tests may run side by side
        "-m",
        "symgnn_ase",
        "train",
        str(config),
        "--no-progress",
        *extra,
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def _check(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _same_run(a: Path, b: Path) -> None:
    """Bitwise the same weights, running statistics, averaged weights and history."""
    la, lb = load_checkpoint(a / "last.pt"), load_checkpoint(b / "last.pt")
    assert la["epoch"] == lb["epoch"]
    for key in ("model", "ema"):
        assert la[key].keys() == lb[key].keys()
        for name in la[key]:
            assert torch.equal(la[key][name], lb[key][name]), (key, name)
    assert torch.equal(la["gen"], lb["gen"])
    for ra, rb in zip(la["history"], lb["history"], strict=True):
        for col in ("train_loss", "valid_pearson", "valid_mae", "lr"):
            assert ra[col] == rb[col], (col, ra[col], rb[col])
    ba, bb = load_checkpoint(a / "best.pt"), load_checkpoint(b / "best.pt")
    assert ba["epoch"] == bb["epoch"]
    for name in ba["model"]:
        assert torch.equal(ba["model"][name], bb["model"][name]), name


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> Path:
    """One process, two frames per step, two epochs."""
    folder = tmp_path_factory.mktemp("ref")
    return train(_config(data, folder / "run", epochs=2), progress=False)


def test_two_processes_train_as_one(data, reference, tmp_path) -> None:
    run = tmp_path / "run"
    proc = _torchrun(_config(data, run, epochs=2))
    _check(proc)
    _same_run(reference, run)
    # rank 0 alone wrote the folder: its files once, no leftovers
    assert {p.name for p in run.iterdir()} == RUN_FILES
    assert load_checkpoint(run / "last.pt")["world_size"] == 2
    assert proc.stdout.count("run folder:") == 1


def test_resume_under_the_other_number_of_processes(data, reference, tmp_path) -> None:
    # 2 processes for one epoch, then 1 process for the rest
    run = tmp_path / "a"
    _check(_torchrun(_config(data, run, epochs=1)))
    train(_config(data, run, epochs=2), resume=True, progress=False)
    _same_run(reference, run)
    # 1 process for one epoch, then 2 processes for the rest
    run = tmp_path / "b"
    train(_config(data, run, epochs=1), progress=False)
    _check(_torchrun(_config(data, run, epochs=2), "--resume"))
    _same_run(reference, run)


def test_more_processes_than_frames_per_step_is_refused(data, tmp_path) -> None:
    proc = _torchrun(_config(data, tmp_path / "run", epochs=1, frames_per_step=1))
    assert proc.returncode != 0
    assert "2 processes but optim.frames_per_step is 1" in proc.stdout + proc.stderr
    assert not (tmp_path / "run" / "last.pt").exists()


def test_frames_per_step_averages_the_frames(data, tmp_path) -> None:
    """frames_per_step 5 on 5 training frames: one step per epoch, whose gradient is the mean
    of the frames' gradients: the same first step as one frame of the pooled loss would give
    when every frame has the same number of atoms and no noise is drawn."""
    cfg = yaml.safe_load(_config(data, tmp_path / "run", epochs=1, frames_per_step=5).read_text())
    cfg["optim"].update(position_noise=0.0, ema=0.0)
    path = tmp_path / "five.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = train(path, progress=False)
    last = load_checkpoint(out / "last.pt")
    assert last["optim"]["state"][0]["step"] == 1  # one optimizer step in the epoch
    assert len(last["history"]) == 1


def test_a_checkpoint_from_before_frames_per_step_resumes(data, tmp_path) -> None:
    """last.pt of a run started before the option existed (no optim.frames_per_step in its
    config) resumes with the default."""
    run = tmp_path / "old"
    cfg1 = _config(data, run, epochs=1, frames_per_step=1)
    train(cfg1, progress=False)
    last = load_checkpoint(run / "last.pt")
    del last["config"]["optim"]["frames_per_step"]
    torch.save(last, run / "last.pt")
    out = train(_config(data, run, epochs=2, frames_per_step=1), resume=True, progress=False)
    assert load_checkpoint(out / "last.pt")["epoch"] == 2
