"""TorchScript export and loading of models, with their metadata (``format.py``,
``docs/contracts.md``).

The file carries everything a user would otherwise repeat (cutoff, layer
count, species, feature width) as ``_extra_files`` strings, so the calculator
and the LAMMPS compute read them from the model itself.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .format import (
    DTYPES,
    ENSEMBLE_SIZE_KEY,
    FORMAT_VERSION,
    METADATA_KEYS,
    NODE_INPUTS_KEY,
    OPTIONAL_METADATA_KEYS,
    OUTPUT_NAME,
    OUTPUT_UNIT,
    RELAX_KEY,
    VERSION_INFO_KEYS,
    format_problem,
    resolve_model_path,
)
from .nn.ops import LIBRARY_NAME, fused_ops_available, fused_ops_disabled, ops_library_path
from .outputs import atomic_path, check_output
from .potential.inputs import NodeInputSpec
from .potential.relax import RelaxProtocol

logger = logging.getLogger(__name__)

__all__ = [
    "LoadedModel",
    "export_model",
    "load_model",
    "model_dtype",
    "rewrite_metadata",
    "script_error_line",
    "torchscript_allowed",
    "wrapped_kinds",
]


@dataclass
class LoadedModel:
    """A loaded TorchScript model and its metadata."""

    module: torch.jit.ScriptModule
    path: Path
    r_max: float
    n_layers: int
    type_names: list[str]
    feature_dim: int
    dtype: torch.dtype
    info: dict[str, Any] = field(default_factory=dict)
    #: members of an ensemble file (metadata ``ensemble_size``); 1 for a single model
    ensemble_size: int = 1
    #: the relax protocol (metadata ``relax``, ``potential/relax.py``); off when absent
    relax: RelaxProtocol = field(default_factory=RelaxProtocol.off)
    #: per-atom inputs from the simulation's potential (metadata ``node_inputs``,
    #: ``potential/inputs.py``): the module's embed/forward take them; None when absent
    node_inputs: NodeInputSpec | None = None

    def __call__(self, species, edge_index, edge_vec):  # noqa: D401 - thin wrapper
        return self.module(species, edge_index, edge_vec)

    @property
    def is_ensemble(self) -> bool:
        """Whether the file holds several models (``forward_std`` gives mean and std)."""
        return self.ensemble_size > 1


def _made_with() -> dict[str, str]:
    """The ``info`` entries naming the symgnn and torch versions a model is exported with."""
    from . import __version__

    return dict(zip(VERSION_INFO_KEYS, (__version__, torch.__version__), strict=True))


@contextlib.contextmanager
def torchscript_allowed() -> Iterator[None]:
    """TorchScript is what libtorch (the LAMMPS plugin) loads; torch >= 2.10 warns on it."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".*torch\.jit\.\w+.* is deprecated", category=DeprecationWarning
        )
        yield


_DTYPES = {name: getattr(torch, name) for name in DTYPES}


def model_dtype(*modules: nn.Module) -> torch.dtype:
    """The dtype of a model file holding ``modules``: float64 when any of them has a float64
    parameter (a float64 ensemble may hold float32 networks: compose/stack.InFloat64), else
    the first parameter's."""
    params = [p for module in modules for p in module.parameters()]
    if any(p.dtype == torch.float64 for p in params):
        return torch.float64
    return params[0].dtype


def export_model(
    model: nn.Module,
    path: str | os.PathLike,
    type_names: list[str],
    r_max: float,
    info: dict[str, Any] | None = None,
    inputs: Iterable[str | os.PathLike | None] = (),
    metadata: dict[str, str] | None = None,
) -> Path:
    """Script ``model`` (in eval mode) and write it with metadata, atomically.

    ``path`` is refused before any work when it is not a regular file or is one of ``inputs``
    (the checkpoint being exported), see :mod:`symgnn_ase.outputs`. ``metadata``: optional
    entries (``format.OPTIONAL_METADATA_KEYS``), e.g. ``ensemble_size``.
    """
    inputs = list(inputs)
    unknown = sorted(set(metadata or {}) - set(OPTIONAL_METADATA_KEYS))
    if unknown:
        raise ValueError(f"unknown optional metadata {unknown}; known: {OPTIONAL_METADATA_KEYS}")
    check_output(path, inputs, what="export output")
    model = model.eval()
    dtype = model_dtype(model)
    dtype_name = {v: k for k, v in _DTYPES.items()}.get(dtype)
    if dtype_name is None:
        raise ValueError(f"model dtype must be float32 or float64, got {dtype}")
    n_inputs = max((int(getattr(m, "n_inputs", 0) or 0) for m in model.modules()), default=0)
    declared = (metadata or {}).get(NODE_INPUTS_KEY)
    if n_inputs and not declared:
        raise ValueError(
            f"the model takes {n_inputs} per-atom node input(s) from the potential, which "
            f"only a model file of its own can declare (metadata `{NODE_INPUTS_KEY}`, written "
            "by `symgnn export RUN`); it cannot be wrapped (residual, smoothed; an ensemble "
            "can hold it: `symgnn ensemble`)"
        )
    if declared and NodeInputSpec.from_json(declared).n_inputs != n_inputs:
        raise ValueError(
            f"metadata `{NODE_INPUTS_KEY}` declares {declared!r} but the model takes "
            f"{n_inputs} node input(s)"
        )
    with torchscript_allowed():
        scripted = torch.jit.script(model)
    meta = {
        "symgnn_format": FORMAT_VERSION,
        "r_max": repr(float(r_max)),
        "n_layers": str(int(model.n_layers)),
        "type_names": " ".join(type_names),
        "feature_dim": str(int(model.feature_dim)),
        "output": OUTPUT_NAME,
        "unit": OUTPUT_UNIT,
        "dtype": dtype_name,
        "info": json.dumps(
            {
                "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                **_made_with(),
            }
            | (info or {}),
            sort_keys=True,
        ),
    } | dict(metadata or {})
    path = Path(path)
    with atomic_path(path, inputs, what="export output") as tmp, torchscript_allowed():
        torch.jit.save(scripted, str(tmp), _extra_files=meta)
    logger.info("exported %s model to %s", getattr(model, "kind", "?"), path)
    return path


def rewrite_metadata(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    changes: dict[str, str],
    inputs: Iterable[str | os.PathLike | None] = (),
    what: str = "output",
) -> Path:
    """Write a copy of the model file ``src`` (checked with :func:`load_model` first) to
    ``dst``, atomically, with the metadata entries ``changes`` set (``info`` or an optional
    key; the module untouched). ``dst`` may be neither ``src`` nor one of ``inputs``."""
    unknown = sorted(set(changes) - set(OPTIONAL_METADATA_KEYS) - {"info"})
    if unknown:
        raise ValueError(
            f"metadata {unknown} cannot be rewritten: only info and {OPTIONAL_METADATA_KEYS}"
        )
    src = resolve_model_path(src)
    inputs = [src, *inputs]
    check_output(dst, inputs, what=what)
    load_model(src)  # a readable symgnn model, checked before any writing
    extra = dict.fromkeys(METADATA_KEYS + OPTIONAL_METADATA_KEYS, "")
    with torchscript_allowed():
        module = torch.jit.load(str(src), map_location="cpu", _extra_files=extra)
    meta = {k: v.decode() if isinstance(v, bytes) else v for k, v in extra.items()}
    meta = {k: v for k, v in meta.items() if k in METADATA_KEYS or v} | dict(changes)
    with atomic_path(dst, inputs, what=what) as tmp, torchscript_allowed():
        torch.jit.save(module, str(tmp), _extra_files=meta)
    return Path(dst)


def load_model(
    model: str | os.PathLike | None = None, device: str | torch.device = "cpu"
) -> LoadedModel:
    """Load an exported model (a path, a bundled name, or None for the default)."""
    path = resolve_model_path(model)
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a symgnn model: not a TorchScript archive (export one with "
            "`symgnn export RUN -o model.pt`)"
        )
    extra = dict.fromkeys(METADATA_KEYS + OPTIONAL_METADATA_KEYS, "")
    fused_ops_available()  # models exported with the fused operators name them
    try:
        with torchscript_allowed():
            module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except RuntimeError as exc:
        if "symgnn::" in str(exc):
            why = (
                "SYMGNN_DISABLE_FUSED=1 is set"
                if fused_ops_disabled()
                else f"this installation has no {LIBRARY_NAME} (found: {ops_library_path()})"
            )
            raise ValueError(
                f"{path} uses the fused operators symgnn::egat_edges / symgnn::painn_message "
                f"but {why}; rebuild the package with torch installed (`make setup`), or "
                "re-export the model with SYMGNN_DISABLE_FUSED=1 to get plain PyTorch ops"
            ) from None
        raise ValueError(f"{path} is not a loadable TorchScript model: {exc}") from None
    extra = {k: v.decode() if isinstance(v, bytes) else v for k, v in extra.items()}
    problem = format_problem(extra["symgnn_format"])
    if problem is not None:
        raise ValueError(f"{path} {problem}")
    missing = [k for k in METADATA_KEYS if not extra[k]]
    if missing:
        raise ValueError(f"{path}: symgnn model metadata lacks {missing}")
    meta = parse_metadata(path, extra)
    _require_methods(
        module,
        CONTRACT_METHODS,
        f"{path}: its metadata says symgnn model",
        "not a symgnn barrier model (`symgnn export RUN -o model.pt` makes one)",
    )
    if next(iter(module.parameters()), None) is None:
        raise ValueError(
            f"{path}: the module has no parameters: not a trained symgnn barrier model "
            "(`symgnn export RUN -o model.pt` makes one)"
        )
    if meta["ensemble_size"] > 1:
        _require_methods(
            module,
            ENSEMBLE_METHODS,
            f"{path}: metadata `{ENSEMBLE_SIZE_KEY}` says {meta['ensemble_size']} members",
            "not a symgnn ensemble file (`symgnn ensemble MODEL... -o ens.pt` makes one)",
        )
    takes = int(getattr(module, "n_inputs", 0) or 0)
    declared = meta["node_inputs"].n_inputs if meta["node_inputs"] is not None else 0
    if takes != declared:
        raise ValueError(
            f"{path}: metadata `{NODE_INPUTS_KEY}` declares {declared} per-atom input(s) but "
            f"the module takes {takes}: a broken model file (re-export it)"
        )
    module.eval()
    return LoadedModel(module=module, path=path, **meta)


def _require_methods(module: Any, methods: Iterable[str], claim: str, what: str) -> None:
    """A ValueError "``claim`` but the module has no <the methods it lacks>: ``what``" unless
    ``module`` has every one of ``methods``."""
    lacking = [m for m in methods if not hasattr(module, m)]
    if lacking:
        raise ValueError(f"{claim} but the module has no {', '.join(lacking)}: {what}")


def wrapped_kinds(info: dict[str, Any]) -> list[str]:
    """The kinds of a model file and of the models it wraps, outermost first (``smoothed``,
    ``ensemble`` for a smoothed ensemble), from its ``info`` and its bases' records."""
    kinds: list[str] = []
    while isinstance(info, dict):
        if info.get("kind"):
            kinds.append(str(info["kind"]))
        info = (info.get("base") or {}).get("info")
    return kinds


def refuse_denoised(path: str | os.PathLike, info: dict[str, Any]) -> None:
    """A ValueError for a file made by the removed ``symgnn denoise`` (kind ``denoised``, at any
    depth of its wrappers): the learned thermal denoiser was replaced by the relax protocol."""
    if "denoised" not in wrapped_kinds(info):
        return
    record = info
    while isinstance(record, dict) and record.get("kind") != "denoised":
        record = (record.get("base") or {}).get("info")
    base = ((record or {}).get("base") or {}).get("source")
    hint = f" its base model ({base})" if base else " a plain model"
    raise ValueError(
        f"{path}: kind `denoised` (the learned thermal denoiser) is no longer supported: it was "
        f"replaced by the relax protocol, which moves the atoms along the simulation's own "
        f"forces; give{hint} a protocol with `symgnn relax MODEL --steps 4 --alpha 0.12 -o "
        f"OUT.pt`, or use `compute ... relax_steps 4` in LAMMPS"
    )


def script_error_line(exc: BaseException) -> str:
    """The error of a TorchScript interpreter failure without its trace: the last non-empty
    line of the message (``RuntimeError: select(): index -1 out of range``)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


#: what every model file's module exports (docs/contracts.md; the LAMMPS compute calls them)
CONTRACT_METHODS = ("embed", "interact", "readout")
#: what an ensemble file's module exports besides the single-model contract
ENSEMBLE_METHODS = ("forward_std", "forward_members", "readout_std", "readout_members")


def parse_metadata(path: str | os.PathLike, extra: dict[str, str]) -> dict[str, Any]:
    """The typed metadata of a model file; every malformed entry is a ValueError naming the file,
    the key, what it must be and what it is."""

    def bad(key: str, want: str) -> ValueError:
        return ValueError(f"{path}: metadata `{key}` must be {want}, got {extra[key]!r}")

    try:
        r_max = float(extra["r_max"])
    except ValueError:
        raise bad("r_max", "a finite number > 0 (Å)") from None
    if not (r_max > 0 and r_max < float("inf")):
        raise bad("r_max", "a finite number > 0 (Å)")
    ints = {}
    for key in ("n_layers", "feature_dim"):
        try:
            ints[key] = int(extra[key])
        except ValueError:
            raise bad(key, "a positive integer") from None
        if ints[key] < 1:
            raise bad(key, "a positive integer")
    type_names = extra["type_names"].split()
    if not type_names or len(set(type_names)) != len(type_names):
        raise bad("type_names", "distinct species names separated by spaces, e.g. 'Cu Zr'")
    from ase.data import atomic_numbers

    unknown = [t for t in type_names if t not in atomic_numbers or t == "X"]
    if unknown:
        raise bad(
            "type_names",
            f"chemical element symbols separated by spaces, e.g. 'Cu Zr' ({', '.join(unknown)} "
            "is not an element)",
        )
    if extra["output"] != OUTPUT_NAME:
        raise ValueError(
            f"{path}: metadata `output` is {extra['output']!r}, not {OUTPUT_NAME!r}: this model "
            f"does not predict energy barriers, and symgnn reads only models that do"
        )
    if extra["unit"] != OUTPUT_UNIT:
        raise ValueError(
            f"{path}: metadata `unit` is {extra['unit']!r}, not {OUTPUT_UNIT!r}: symgnn reports "
            f"barriers in {OUTPUT_UNIT} and does not convert; re-export the model in {OUTPUT_UNIT}"
        )
    dtype = _DTYPES.get(extra["dtype"])
    if dtype is None:
        raise bad("dtype", f"one of {list(_DTYPES)}")
    try:
        info = json.loads(extra["info"])
    except ValueError:
        raise bad("info", "a JSON object") from None
    if not isinstance(info, dict):
        raise bad("info", "a JSON object")
    refuse_denoised(path, info)
    ensemble_size = 1
    if extra.get(ENSEMBLE_SIZE_KEY):
        try:
            ensemble_size = int(extra[ENSEMBLE_SIZE_KEY])
        except ValueError:
            raise bad(ENSEMBLE_SIZE_KEY, "an integer >= 2") from None
        if ensemble_size < 2:
            raise bad(ENSEMBLE_SIZE_KEY, "an integer >= 2")
    relax = RelaxProtocol.off()
    if extra.get(RELAX_KEY):
        relax = RelaxProtocol.from_json(extra[RELAX_KEY], source=path)
    node_inputs = None
    if extra.get(NODE_INPUTS_KEY):
        node_inputs = NodeInputSpec.from_json(extra[NODE_INPUTS_KEY], source=path)
    return dict(
        r_max=r_max,
        n_layers=ints["n_layers"],
        type_names=type_names,
        feature_dim=ints["feature_dim"],
        dtype=dtype,
        info=info,
        ensemble_size=ensemble_size,
        relax=relax,
        node_inputs=node_inputs,
    )
