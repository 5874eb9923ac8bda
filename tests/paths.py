"""Where the tests find things, relative to this checkout (never an absolute path of one
machine): the repository root and the CuZr data set beside it (``../shared/data/cuzr64``).

Tests that need the data set call :func:`require_data`: where it is missing they skip, saying
where it was looked for, unless ``SYMGNN_REQUIRE_DATA=1`` (set by ``.ci/run`` when ``CI=true``), under which a
missing data set is a failure: CI cannot pass with those tests silently skipped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: the Cu64Zr36 data set of the SymGNN paper, beside the repository (README, MODEL_CARD)
CUZR64 = REPO.parent / "shared" / "data" / "cuzr64"
VALID = CUZR64 / "valid.extxyz"
#: set to 1 (CI does) to make a missing data set fail the tests that need it
REQUIRE_DATA_ENV = "SYMGNN_REQUIRE_DATA"


def missing_data_reason(path: Path = VALID) -> str:
    return (
        f"the CuZr data set is not beside this checkout ({path} is missing; it is looked "
        f"for in ../shared/data/cuzr64 relative to {REPO})"
    )


def data_required() -> bool:
    """Whether ``SYMGNN_REQUIRE_DATA`` asks for a missing data set to fail the tests."""
    return os.environ.get(REQUIRE_DATA_ENV, "").strip() not in ("", "0")


def require_data(path: Path = VALID) -> Path:
    """``path`` (a file of the data set) if it exists; otherwise skip the calling test, or fail
    it under ``SYMGNN_REQUIRE_DATA=1``."""
    if path.exists():
        return path
    reason = missing_data_reason(path)
    if data_required():
        pytest.fail(f"{reason}; {REQUIRE_DATA_ENV}=1 makes this a failure, not a skip")
    pytest.skip(reason)
