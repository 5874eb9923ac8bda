"""Runs the C++ neighbor-list test executable (tests/cpp/test_neighbors.cpp).

It checks the CPU list against brute force, bit-identical results across
thread counts, and CUDA against CPU when a GPU is visible.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest


def _executable() -> Path | None:
    spec = importlib.util.find_spec("symgnn_ase._core")
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "bin" / "test_neighbors_cpp"
    return path if path.exists() else None


@pytest.fixture(scope="module")
def cpp_run() -> subprocess.CompletedProcess:
    exe = _executable()
    if exe is None:
        pytest.skip("test_neighbors_cpp is not installed (build with `make build`)")
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    print(proc.stdout)
    return proc


def test_cpp_neighbors(cpp_run) -> None:
    """The CPU checks (and, without CUDA support, that the CUDA entry point says so)."""
    assert cpp_run.returncode == 0, cpp_run.stdout + cpp_run.stderr
    assert "all checks passed" in cpp_run.stdout


def test_cpp_neighbors_cuda(cpp_run) -> None:
    """The CUDA list against the CPU list: run by the same executable where a GPU is visible,
    a pytest skip with the executable's reason where not."""
    assert cpp_run.returncode == 0, cpp_run.stdout + cpp_run.stderr
    skipped = [line for line in cpp_run.stdout.splitlines() if line.startswith("SKIPPED")]
    if skipped:
        pytest.skip(f"test_neighbors_cpp CUDA checks: {skipped[0].split(':', 1)[1].strip()}")
