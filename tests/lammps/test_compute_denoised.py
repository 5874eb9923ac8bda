"""`compute symgnn dn.pt Cu Zr std yes` with a denoised ensemble (``symgnn denoise``): the
force steps run inside the model, layer by layer with the ghost exchange, so 1 and 2 MPI ranks
and the ASE calculator give the same mean and std."""

from __future__ import annotations

import pytest

from .helpers import check_std_ranks_and_ase, tiny_ensemble


@pytest.fixture(scope="module")
def denoised(tmp_path_factory):
    from symgnn_ase.denoise import export_denoised
    from symgnn_ase.testing import make_tiny_force_net

    folder = tmp_path_factory.mktemp("denoised")
    ens = tiny_ensemble(folder, seed=40)
    out = folder / "dn.pt"
    # a strong step, so that a ghost atom with a wrong displacement would show
    export_denoised(ens, make_tiny_force_net(folder / "net", seed=41), out, alpha=1.0, n_steps=2)
    return out


def test_ranks_and_ase_agree(lammps, plugin_so, denoised, tmp_path):
    check_std_ranks_and_ase(lammps, denoised, tmp_path, seed=13)
