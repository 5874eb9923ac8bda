"""The model-file contract in one place: format version, metadata keys, output name and unit,
and where bundled models are found.

Mirrored for the LAMMPS plugin by ``lammps_plugin/symgnn_format.h``; the test
``tests/python/test_format.py`` parses that header and checks that the two agree.
The contract itself is written up in ``docs/contracts.md``. This module imports
no torch.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = [
    "FORMAT_VERSION",
    "METADATA_KEYS",
    "OPTIONAL_METADATA_KEYS",
    "ENSEMBLE_SIZE_KEY",
    "RELAX_KEY",
    "NODE_INPUTS_KEY",
    "OUTPUT_NAME",
    "OUTPUT_UNIT",
    "DTYPES",
    "VERSION_INFO_KEYS",
    "format_problem",
    "MODELS_DIR_ENV",
    "PACKAGE_MODELS_DIR",
    "DEFAULT_MODEL",
    "DEFAULT_FILE",
    "MODEL_SUFFIX",
    "model_folders",
    "bundled_models",
    "default_model_path",
    "resolve_model_path",
]

#: value of the ``symgnn_format`` metadata entry this package writes and reads
FORMAT_VERSION = "1"
#: the ``_extra_files`` entries of an exported model, all required
METADATA_KEYS = (
    "symgnn_format",
    "r_max",
    "n_layers",
    "type_names",
    "feature_dim",
    "output",
    "unit",
    "dtype",
    "info",
)
#: optional ``_extra_files`` entries: ``ensemble_size`` (K >= 2) marks an ensemble file, whose
#: module also exports ``forward_std``/``readout_std`` (mean and standard deviation, ``[2, N]``)
#: and ``forward_members``/``readout_members`` (``[K, N]``); ``relax`` is the relax protocol (a
#: JSON object ``{"steps", "alpha", "cap", "potential", "pair_style"}``, see
#: ``potential/relax.py``): the model predicts on a copy of the positions moved ``steps`` times
#: along the simulation's own forces; ``node_inputs`` declares per-atom inputs from the
#: simulation's potential (a JSON object ``{"names", "potential", "pair_style", "stats"}``, see
#: ``potential/inputs.py``): the module's ``embed`` then takes them as a fourth argument
ENSEMBLE_SIZE_KEY = "ensemble_size"
RELAX_KEY = "relax"
NODE_INPUTS_KEY = "node_inputs"
OPTIONAL_METADATA_KEYS = (ENSEMBLE_SIZE_KEY, RELAX_KEY, NODE_INPUTS_KEY)
#: what ``forward``/``readout`` return per atom, and its unit (metadata ``output``, ``unit``)
OUTPUT_NAME = "energy_barrier"
OUTPUT_UNIT = "eV"
#: metadata ``dtype`` values: the floating type of the model's parameters and edge vectors
DTYPES = ("float32", "float64")

#: entries of the ``info`` JSON that export writes: the symgnn and torch versions the model was
#: made with (files exported before symgnn 0.1.0 lack them, which is fine)
VERSION_INFO_KEYS = ("symgnn_version", "torch_version")


def format_problem(value: str) -> str | None:
    """Why a file whose ``symgnn_format`` metadata is ``value`` cannot be read by this
    installation (a sentence to follow the file's name), or None when it can.

    A format newer than :data:`FORMAT_VERSION` means a newer symgnn made the file: the message
    says so and what to do (the LAMMPS plugin says the same, ``symgnn_model.cpp``).
    """
    if value == FORMAT_VERSION:
        return None
    if value.isdigit() and int(value) > int(FORMAT_VERSION):
        from . import __version__

        return (
            f"made by a newer symgnn: its model format is {value}, this symgnn ({__version__}) "
            f"reads format {FORMAT_VERSION}; upgrade symgnn (pip install -U symgnn-ase), or "
            "export the model with this version"
        )
    return (
        f"is not a symgnn model: metadata `symgnn_format` is {value!r}, expected {FORMAT_VERSION!r}"
    )


#: environment variable naming a folder of models searched before the package's own
MODELS_DIR_ENV = "SYMGNN_MODELS_DIR"
#: the bundled models; the LAMMPS plugin looks here too (beside itself and in the source tree)
PACKAGE_MODELS_DIR = Path(__file__).resolve().parent / "models"
#: the model name meaning "the one the ``DEFAULT`` file of a models folder names"
DEFAULT_MODEL = "default"
#: file in a models folder whose first word is the stem of the default model
DEFAULT_FILE = "DEFAULT"
MODEL_SUFFIX = ".pt"


def model_folders() -> list[Path]:
    """Folders searched for bundled model names, first match wins: ``$SYMGNN_MODELS_DIR``
    (when set and not empty), then the package's ``models/``."""
    out = []
    env = os.environ.get(MODELS_DIR_ENV, "")
    if env:
        out.append(Path(env))
    out.append(PACKAGE_MODELS_DIR)
    return out


def _default_in(folder: Path) -> Path | None:
    """The model the ``DEFAULT`` file of ``folder`` names, if that file exists."""
    try:
        words = (folder / DEFAULT_FILE).read_text().split()
    except OSError:
        return None
    if not words:
        return None
    path = folder / (words[0] + MODEL_SUFFIX)
    if not path.is_file():
        # the LAMMPS plugin falls back to the next folder too; say so instead of silently
        logger.warning(
            "%s names the default model %r, but %s is not a file: using the next models "
            "folder's default (fix or remove that DEFAULT file)",
            folder / DEFAULT_FILE,
            words[0],
            path,
        )
        return None
    return path


def bundled_models() -> dict[str, Path]:
    """Model files by name (file stem, and ``default``) over :func:`model_folders`."""
    out: dict[str, Path] = {}
    default: Path | None = None
    for folder in model_folders():
        for path in sorted(folder.glob("*" + MODEL_SUFFIX)):
            out.setdefault(path.stem, path)
        if default is None:
            default = _default_in(folder)
    if default is not None:
        out[DEFAULT_MODEL] = default
    return out


def default_model_path() -> Path:
    """Path of the default model: the first models folder whose ``DEFAULT`` names a file."""
    models = bundled_models()
    if DEFAULT_MODEL not in models:
        folders = ", ".join(str(f) for f in model_folders())
        raise FileNotFoundError(
            f"no bundled default model in {folders}: the package was installed without "
            f"its models folder; reinstall it, set {MODELS_DIR_ENV}, or pass a model path"
        )
    return models[DEFAULT_MODEL]


def resolve_model_path(model: str | os.PathLike | None) -> Path:
    """A path, a bundled model name (``default``, ``symgnn``, ...), or None for the default.

    An existing file wins over a bundled name, as in the LAMMPS plugin.
    """
    if model is None:
        return default_model_path()
    text = str(model)
    if os.path.exists(text):
        return Path(text)
    models = bundled_models()
    if text in models:
        return models[text]
    names = ", ".join(sorted(models)) or "none"
    raise FileNotFoundError(f"model file not found: {text} (bundled model names: {names})")
