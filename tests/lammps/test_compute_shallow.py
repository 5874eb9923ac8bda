"""`compute symgnn shallow.pt Cu Zr std yes` with a shallow ensemble (one network, several
readout heads; ``model.readout_heads``): the ensemble contract with no change to the compute,
mean and std the same on 1 and 2 MPI ranks and the same as the ASE calculator."""

from __future__ import annotations

import torch

from .helpers import check_std_ranks_and_ase


def test_shallow_ensemble_std_across_ranks_and_against_ase(lammps, plugin_so, tmp_path):
    from symgnn_ase.nn.factory import build_model
    from symgnn_ase.testing import tiny_config
    from symgnn_ase.train.checkpoints import atomic_save
    from symgnn_ase.train.export import export_run

    torch.manual_seed(21)
    cfg = tiny_config("length", readout_heads=5)
    model = build_model(cfg)
    with torch.no_grad():
        model.label_mean.fill_(1.6)
        model.label_std.fill_(0.35)
    atomic_save(
        {"model": model.state_dict(), "config": {"model": cfg.to_dict()}}, tmp_path / "best.pt"
    )
    shallow = export_run(tmp_path, tmp_path / "shallow.pt", std_scale=1.7)
    check_std_ranks_and_ase(lammps, shallow, tmp_path, seed=13)
