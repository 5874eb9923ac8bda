"""Every stand-alone script of the repository compiles (scripts no test imports: benchmarks,
training, examples, the demo). A compile-time error such as a name used before its ``global``
declaration would otherwise show only when someone runs the script."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..paths import REPO as ROOT

SCRIPTS = sorted(
    p.relative_to(ROOT)
    for folder in ("benchmarks", "training", "examples", "python/symgnn_ase/demo")
    for p in (ROOT / folder).rglob("*.py")
    if "out" not in p.relative_to(ROOT).parts
)


def test_there_are_scripts():
    assert len(SCRIPTS) > 10, SCRIPTS


@pytest.mark.parametrize("path", SCRIPTS, ids=str)
def test_script_compiles(path: Path):
    source = (ROOT / path).read_text()
    compile(source, str(path), "exec", dont_inherit=True)
