"""The model-file contract: python/symgnn_ase/format.py and its C++ mirror
lammps_plugin/symgnn_format.h must agree, and the plugin must take it from the header."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import symgnn_ase.format as fmt

ROOT = Path(__file__).resolve().parents[2]
HEADER = ROOT / "lammps_plugin" / "symgnn_format.h"


def _header() -> str:
    if not HEADER.exists():
        pytest.skip(f"{HEADER} is not in this checkout")
    return re.sub(r"//[^\n]*", "", HEADER.read_text())


def _string(text: str, name: str) -> str:
    match = re.search(rf"\b{name}\[\]\s*=\s*\"([^\"]*)\"\s*;", text)
    assert match, f"{name} not found in {HEADER}"
    return match.group(1)


def _strings(text: str, name: str) -> tuple[str, ...]:
    match = re.search(rf"\b{name}\[\]\s*=\s*\{{([^}}]*)\}}\s*;", text)
    assert match, f"{name} not found in {HEADER}"
    return tuple(re.findall(r"\"([^\"]*)\"", match.group(1)))


def test_header_mirrors_python() -> None:
    text = _header()
    assert _string(text, "kFormatVersion") == fmt.FORMAT_VERSION
    assert _strings(text, "kMetadataKeys") == fmt.METADATA_KEYS
    assert _strings(text, "kOptionalMetadataKeys") == fmt.OPTIONAL_METADATA_KEYS
    assert _string(text, "kEnsembleSizeKey") == fmt.ENSEMBLE_SIZE_KEY
    assert _string(text, "kOutputName") == fmt.OUTPUT_NAME
    assert _string(text, "kOutputUnit") == fmt.OUTPUT_UNIT
    assert _strings(text, "kDtypes") == fmt.DTYPES
    assert _string(text, "kModelsDirEnv") == fmt.MODELS_DIR_ENV
    assert _string(text, "kModelsFolder") == fmt.PACKAGE_MODELS_DIR.name
    assert _string(text, "kDefaultModel") == fmt.DEFAULT_MODEL
    assert _string(text, "kDefaultFile") == fmt.DEFAULT_FILE
    assert _string(text, "kModelSuffix") == fmt.MODEL_SUFFIX


def test_plugin_takes_the_contract_from_the_header() -> None:
    _header()
    for src in sorted((ROOT / "lammps_plugin").glob("*.cpp")):
        text = src.read_text()
        for literal in (f'"{fmt.MODELS_DIR_ENV}"', '"symgnn_format", "r_max"', '"DEFAULT"'):
            assert literal not in text, (
                f"{src.name} spells {literal} instead of using {HEADER.name}"
            )


def test_exported_metadata_follows_the_contract(tmp_path: Path) -> None:
    import torch

    from symgnn_ase.export import load_model, torchscript_allowed
    from symgnn_ase.testing import make_tiny_model

    path = tmp_path / "tiny.pt"
    make_tiny_model(path, "length")
    extra = dict.fromkeys(fmt.METADATA_KEYS, "")
    with torchscript_allowed():
        torch.jit.load(str(path), _extra_files=extra)
    meta = {k: v.decode() if isinstance(v, bytes) else v for k, v in extra.items()}
    assert all(meta[k] for k in fmt.METADATA_KEYS)
    assert meta["symgnn_format"] == fmt.FORMAT_VERSION
    assert (meta["output"], meta["unit"]) == (fmt.OUTPUT_NAME, fmt.OUTPUT_UNIT)
    assert meta["dtype"] in fmt.DTYPES
    assert load_model(path).type_names == meta["type_names"].split()


def test_format_is_light() -> None:
    import subprocess
    import sys

    code = "import sys, symgnn_ase.format; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
