"""Where the tests find things, relative to this checkout (never an absolute path of one
machine): the repository root and the CuZr data set beside it (``../shared/data/cuzr64``)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: the Cu64Zr36 data set of the SymGNN paper, beside the repository (README, MODEL_CARD)
CUZR64 = REPO.parent / "shared" / "data" / "cuzr64"
VALID = CUZR64 / "valid.extxyz"


def missing_data_reason(path: Path = VALID) -> str:
    return (
        f"the CuZr data set is not beside this checkout ({path} is missing; it is looked "
        f"for in ../shared/data/cuzr64 relative to {REPO})"
    )
