"""What the training tests share: tiny labelled glasses they write for themselves, the
configuration of a run on them, and the files a run folder holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ase.io
import numpy as np
import yaml
from ase import Atoms

from symgnn_ase.testing import random_glass

RUN_FILES = {
    "config.yaml",
    "git_commit.txt",
    "metrics.csv",
    "last.pt",
    "best.pt",
    "learning_curve.png",
    "parity.png",
    "summary.json",
}


def write_labelled_glasses(folder: Path, count: int, n_atoms: int, seed: int) -> list[Atoms]:
    """``count`` random glasses of ``n_atoms`` (seeds ``seed``, ``seed + 1``, ...) with a smooth
    synthetic barrier per atom, written as ``folder/g0.extxyz``, ``g1.extxyz``, ...; returned."""
    glasses = []
    for k in range(count):
        atoms = random_glass(n_atoms, seed=seed + k)
        zr = atoms.numbers == 40
        atoms.arrays["energy_barrier"] = 1.5 + 0.3 * zr + 0.05 * np.cos(atoms.positions[:, 0])
        ase.io.write(folder / f"g{k}.extxyz", atoms)
        glasses.append(atoms)
    return glasses


def run_config(
    data: Path, run_dir: Path, model: dict, optim: dict, seed: int = 3, n_train: int = 2
) -> dict[str, Any]:
    """A one-thread training config: ``data/g0.extxyz`` ... ``g{n_train - 1}`` for training,
    ``g{n_train}`` for validation."""
    return {
        "run_dir": str(run_dir),
        "seed": seed,
        "threads": 1,
        "data": {
            "train": [str(data / f"g{k}.extxyz") for k in range(n_train)],
            "valid": str(data / f"g{n_train}.extxyz"),
        },
        "model": model,
        "optim": optim,
    }


def write_config(path: Path, cfg: dict) -> Path:
    """``cfg`` as YAML at ``path``; the path."""
    path.write_text(yaml.safe_dump(cfg))
    return path
