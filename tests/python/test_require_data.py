"""tests/paths.require_data: a missing data set skips a test, saying where it was looked for,
and fails it under SYMGNN_REQUIRE_DATA=1 (set by .ci/run when CI=true), so CI cannot pass with the tests that
need the data set skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..paths import REPO, REQUIRE_DATA_ENV, require_data


def test_missing_data_skips_or_fails(monkeypatch, tmp_path: Path) -> None:
    missing = tmp_path / "valid.extxyz"
    monkeypatch.delenv(REQUIRE_DATA_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"valid\.extxyz is missing"):
        require_data(missing)
    monkeypatch.setenv(REQUIRE_DATA_ENV, "0")
    with pytest.raises(pytest.skip.Exception):
        require_data(missing)
    monkeypatch.setenv(REQUIRE_DATA_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{REQUIRE_DATA_ENV}=1 makes this a failure"):
        require_data(missing)
    missing.write_text("")
    assert require_data(missing) == missing


def test_ci_requires_the_data() -> None:
    text = (REPO / ".ci" / "run").read_text()
    assert f"export {REQUIRE_DATA_ENV}=1" in text
    # as CI runs it (CI=true); a developer's run in a clone without the data set skips instead
    assert 'if [ "${CI:-}" = "true" ]; then' in text
