"""Packaging: the version is written once (pyproject.toml) and read everywhere, the torch pin is
the same for the build and the runtime, exported models record the symgnn and torch versions,
and a model made by a newer format is refused saying so."""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path

import pytest
import torch

import symgnn_ase
from symgnn_ase import format as fmt
from symgnn_ase.export import load_model, torchscript_allowed
from symgnn_ase.testing import make_tiny_model

ROOT = Path(__file__).resolve().parents[2]
tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_version_defined_once():
    version = PYPROJECT["project"]["version"]
    assert symgnn_ase.__version__ == version == metadata.version("symgnn-ase")
    # nowhere else in the package sources
    for path in (ROOT / "python" / "symgnn_ase").rglob("*.py"):
        assert f'"{version}"' not in path.read_text(), path
    assert f"v{version}" not in (ROOT / "lammps_plugin" / "symgnnplugin.cpp").read_text()


def test_torch_pin_same_for_build_and_runtime():
    build = [r for r in PYPROJECT["build-system"]["requires"] if r.startswith("torch")]
    run = [r for r in PYPROJECT["project"]["dependencies"] if r.startswith("torch")]
    assert build == run and len(run) == 1 and re.fullmatch(r"torch==[\d.]+", run[0]), (build, run)
    assert torch.__version__.split("+")[0] == run[0].removeprefix("torch==")
    lammps = [r for r in PYPROJECT["build-system"]["requires"] if r.startswith("lammps")]
    assert lammps and lammps[0].startswith("lammps[mpi]==")


def test_license_and_changelog():
    assert PYPROJECT["project"]["license"] == {"text": "MIT"}
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "the symgnn developers" in text
    assert f"## {PYPROJECT['project']['version']}" in (ROOT / "CHANGELOG.md").read_text()


def _reformat(src: Path, dst: Path, **changes: str) -> Path:
    extra = dict.fromkeys(fmt.METADATA_KEYS, "")
    with torchscript_allowed():
        module = torch.jit.load(str(src), _extra_files=extra)
        torch.jit.save(module, str(dst), _extra_files=extra | changes)
    return dst


def test_export_records_versions(tmp_path):
    path = tmp_path / "tiny.pt"
    make_tiny_model(path)
    info = load_model(path).info
    assert (
        dict(
            zip(fmt.VERSION_INFO_KEYS, (symgnn_ase.__version__, torch.__version__), strict=True)
        ).items()
        <= info.items()
    )
    assert info["kind"] == "symgnn"


def test_newer_format_says_so(tmp_path):
    make_tiny_model(tmp_path / "tiny.pt")
    newer = _reformat(tmp_path / "tiny.pt", tmp_path / "newer.pt", symgnn_format="2")
    with pytest.raises(ValueError, match="made by a newer symgnn: its model format is 2") as err:
        load_model(newer)
    assert symgnn_ase.__version__ in str(err.value) and "pip install -U" in str(err.value)
    other = _reformat(tmp_path / "tiny.pt", tmp_path / "other.pt", symgnn_format="x")
    with pytest.raises(ValueError, match="not a symgnn model: metadata `symgnn_format` is 'x'"):
        load_model(other)


def test_old_files_without_version_keys_load():
    """The bundled models predate the version keys (and stay bit-identical): they load."""
    for name, path in fmt.bundled_models().items():
        info = load_model(path).info
        assert isinstance(info, dict), name
        json.dumps(info)
