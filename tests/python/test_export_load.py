"""Loading exported models: metadata, bundled names, and a clear error for each bad file."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

import symgnn_ase.format as fmt
from symgnn_ase import SymGNNCalculator
from symgnn_ase.export import load_model, torchscript_allowed
from symgnn_ase.testing import make_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "tiny.pt"
    make_tiny_model(path, "symgnn")
    return path


class _Plain(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x + 1


def _save_script(path: Path, extra: dict[str, str]) -> Path:
    with torchscript_allowed():
        torch.jit.save(torch.jit.script(_Plain()), str(path), _extra_files=extra)
    return path


def _metadata(tiny: Path) -> dict[str, str]:
    extra = dict.fromkeys(fmt.METADATA_KEYS, "")
    with torchscript_allowed():
        torch.jit.load(str(tiny), _extra_files=extra)
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in extra.items()}


def test_metadata_round_trip(tiny: Path) -> None:
    loaded = load_model(tiny)
    assert loaded.path == tiny
    assert loaded.r_max == 5.0 and loaded.n_layers == 4
    assert loaded.type_names == ["Cu", "Zr"]
    assert loaded.dtype == torch.float32 and loaded.feature_dim > 0
    assert loaded.info["kind"] == "symgnn" and "date" in loaded.info
    meta = _metadata(tiny)
    assert meta["symgnn_format"] == "1" and meta["output"] == "energy_barrier"
    assert meta["unit"] == "eV"


def test_missing_file_lists_bundled_names(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"model file not found: .*nope\.pt.*bundled"):
        load_model(tmp_path / "nope.pt")


def test_text_file_is_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "notes.pt"
    path.write_text("hello\n")
    with pytest.raises(ValueError, match="not a symgnn model: not a TorchScript archive"):
        load_model(path)


def test_zip_that_is_not_torchscript(tmp_path: Path) -> None:
    path = tmp_path / "archive.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "nothing here")
    with pytest.raises(ValueError, match="not a loadable TorchScript model"):
        load_model(path)


def test_torchscript_without_symgnn_metadata(tmp_path: Path) -> None:
    path = _save_script(tmp_path / "plain.pt", {})
    with pytest.raises(ValueError, match="not a symgnn model: metadata `symgnn_format`"):
        load_model(path)
    with pytest.raises(ValueError, match="not a symgnn model"):
        SymGNNCalculator(path)


def test_incomplete_or_bad_metadata(tiny: Path, tmp_path: Path) -> None:
    meta = _metadata(tiny)
    partial = {k: v for k, v in meta.items() if k not in ("r_max", "type_names")}
    with pytest.raises(ValueError, match=r"metadata lacks \['r_max', 'type_names'\]"):
        load_model(_save_script(tmp_path / "partial.pt", partial))
    with pytest.raises(ValueError, match="metadata `dtype` must be one of"):
        load_model(_save_script(tmp_path / "dtype.pt", meta | {"dtype": "float16"}))


def test_bundled_names_and_default(tiny: Path, tmp_path: Path, monkeypatch) -> None:
    models = tmp_path / "bundled"
    models.mkdir()
    monkeypatch.setattr(fmt, "PACKAGE_MODELS_DIR", models)
    monkeypatch.delenv(fmt.MODELS_DIR_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match="no bundled default model"):
        load_model(None)
    with pytest.raises(FileNotFoundError, match="no bundled default model"):
        SymGNNCalculator()
    (models / "cuzr_test.pt").write_bytes(tiny.read_bytes())
    (models / "DEFAULT").write_text("cuzr_test\n")
    assert load_model("cuzr_test").path == models / "cuzr_test.pt"
    assert load_model(None).path == models / "cuzr_test.pt"
    assert SymGNNCalculator().model.path == models / "cuzr_test.pt"
    with pytest.raises(FileNotFoundError, match="bundled model names: cuzr_test, default"):
        load_model("no_such_model")


def test_models_dir_env_comes_first(tiny: Path, tmp_path: Path, monkeypatch) -> None:
    """``SYMGNN_MODELS_DIR`` is searched before the package's models, as by the plugin."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "other.pt").write_bytes(tiny.read_bytes())
    (mine / "DEFAULT").write_text("other extra words ignored\n")
    monkeypatch.setenv(fmt.MODELS_DIR_ENV, str(mine))
    assert fmt.model_folders() == [mine, fmt.PACKAGE_MODELS_DIR]
    assert fmt.default_model_path() == mine / "other.pt"
    assert load_model("other").path == mine / "other.pt"
    # a DEFAULT naming a missing file is skipped, the next folder's default is used
    (mine / "DEFAULT").write_text("missing\n")
    package_default = fmt._default_in(fmt.PACKAGE_MODELS_DIR)
    if package_default is None:
        with pytest.raises(FileNotFoundError, match="no bundled default model"):
            fmt.default_model_path()
    else:
        assert fmt.default_model_path() == package_default
    # an existing file wins over a bundled name
    monkeypatch.chdir(tmp_path)
    (tmp_path / "other").write_bytes(tiny.read_bytes())
    assert fmt.resolve_model_path("other") == Path("other")
