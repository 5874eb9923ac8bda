"""What the node-input tests share: a tiny ``ridge`` with the potential's per-atom energies as
input, fitted on random Cu-Zr glasses whose labels depend on those energies, and copies of a
model file with its metadata changed."""

from __future__ import annotations

from pathlib import Path

import ase.io
import numpy as np
import yaml

from symgnn_ase.potential.lammps import LammpsPotential
from symgnn_ase.testing import random_glass

POTENTIAL = "CuZr_mm.eam.fs"
MODEL = {
    "kind": "ridge",
    "r_max": 5.0,
    "n_layers": 2,
    "heads": [],
    "n_rbf": 6,
    "rbf_max": 3.4,
    "density_cutoff": 3.5,
    "smooth_lengths": [1.0, 2.0],
    "node_inputs": ["pe"],
}


def write_pe_glasses(folder: Path, count: int = 3, n_atoms: int = 120) -> list:
    """``folder/g0.extxyz`` ... with a label that is a function of each atom's energy."""
    glasses = []
    with LammpsPotential(POTENTIAL) as pot:
        for k in range(count):
            atoms = random_glass(n_atoms, seed=40 + k)
            atoms.rattle(0.05, seed=k)
            pe = pot.energies(atoms)
            zr = atoms.numbers == 40
            ref = np.where(zr, -5.8, -3.6)
            atoms.arrays["energy_barrier"] = 1.5 + 0.3 * zr + 0.4 * (pe - ref)
            ase.io.write(folder / f"g{k}.extxyz", atoms)
            glasses.append(atoms)
    return glasses


def pe_config(folder: Path, run_dir: Path, model: dict | None = None, **data) -> Path:
    """A ridge config on ``folder``'s g0, g1 (training) and g2 (validation)."""
    cfg = {
        "run_dir": str(run_dir),
        "threads": 1,
        "data": {
            "train": [str(folder / "g0.extxyz"), str(folder / "g1.extxyz")],
            "valid": str(folder / "g2.extxyz"),
            "node_inputs_potential": POTENTIAL,
            **data,
        },
        "model": MODEL if model is None else model,
    }
    cfg["data"] = {k: v for k, v in cfg["data"].items() if v is not None}
    path = run_dir.parent / f"{run_dir.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def fit_pe_ridge(folder: Path, **model) -> Path:
    """The exported model file of a ridge fit with ``node_inputs: [pe]`` on ``folder``;
    ``model``: entries changed in :data:`MODEL` (e.g. ``dtype="float32"``, the networks')."""
    from symgnn_ase.train.export import export_run
    from symgnn_ase.train.ridge import fit_ridge

    write_pe_glasses(folder)
    cfg = pe_config(folder, folder / "run", model={**MODEL, **model})
    run = fit_ridge(cfg, alphas=(0.001, 0.1, 10.0))
    return export_run(run, folder / "pe.pt")


def with_metadata(src: Path, dst: Path, **changes: str | None) -> Path:
    """A copy of the model file ``src`` with metadata entries replaced (None: removed)."""
    import torch

    from symgnn_ase.export import torchscript_allowed
    from symgnn_ase.format import METADATA_KEYS, OPTIONAL_METADATA_KEYS

    extra = dict.fromkeys(METADATA_KEYS + OPTIONAL_METADATA_KEYS, "")
    with torchscript_allowed():
        module = torch.jit.load(str(src), _extra_files=extra)
    meta = {k: v.decode() if isinstance(v, bytes) else v for k, v in extra.items()}
    meta = {k: v for k, v in meta.items() if v}
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    with torchscript_allowed():
        torch.jit.save(module, str(dst), _extra_files=meta)
    return dst
