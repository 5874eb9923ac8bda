"""Fixtures of the LAMMPS plugin tests: the real ``lmp``, the built plugin, tiny models.

LAMMPS (``lmp`` of ``lammps[mpi]``, a required dependency) and the built plugin must be there:
without them the tests fail, they do not skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import Lammps


@pytest.fixture(scope="session")
def lammps() -> Lammps:
    return Lammps()


@pytest.fixture(scope="session")
def plugin_so() -> str:
    from symgnn_ase.lammps import plugin_path

    path = plugin_path()
    assert path is not None, (
        "LAMMPS is installed but symgnnplugin.so was not built: run `make build` and read the "
        "CMake output for `symgnn: LAMMPS plugin`"
    )
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    from symgnn_ase.testing import make_tiny_model

    folder = tmp_path_factory.mktemp("models")
    out = {}
    for kind in ("symgnn", "equivariant"):
        path = folder / f"tiny_{kind}.pt"
        make_tiny_model(path, kind=kind, seed=3)
        out[kind] = path
    return out
