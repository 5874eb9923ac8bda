"""Shared fixtures of the Python tests."""

from __future__ import annotations

import pytest
import torch

from symgnn_ase.testing import make_tiny_model


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread: fast and steady on a shared 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path of a tiny exported symgnn model (``make_tiny_model``), made once per session; tests
    must not change the file."""
    path = tmp_path_factory.mktemp("models") / "tiny.pt"
    make_tiny_model(path, "symgnn")
    return str(path)
