"""`compute symgnn s.pt Cu Zr std yes` with a smoothed ensemble (``symgnn smooth``): the
predictions are written into the node state, refreshed on ghost atoms by the exchange, and
averaged over the neighbours inside the model, so 1 and 2 MPI ranks and the ASE calculator give
the same mean and std."""

from __future__ import annotations

import pytest

from .helpers import check_std_ranks_and_ase, tiny_ensemble


@pytest.fixture(scope="module")
def smoothed(tmp_path_factory):
    from symgnn_ase.compose.smooth import export_smoothed

    folder = tmp_path_factory.mktemp("smoothed")
    ens = tiny_ensemble(folder, seed=60)
    out = folder / "s.pt"
    # a long length, so that a ghost atom with a wrong prediction would show
    export_smoothed(ens, out, length=3.0)
    return out


def test_ranks_and_ase_agree(lammps, plugin_so, smoothed, tmp_path):
    check_std_ranks_and_ase(lammps, smoothed, tmp_path, seed=17)
