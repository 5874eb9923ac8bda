"""The one structure reader of the package (predict, explain, evaluate and training use it).

Anything :func:`ase.io.read` reads (extxyz, LAMMPS data and dump files, POSCAR,
CIF, ...): the format is guessed from the file name for LAMMPS files (ASE
mistakes ``*.data`` for another format) and by ASE otherwise; LAMMPS files carry
type numbers, named by ``types`` (``["Cu", "Zr"]`` for types 1, 2, like
``pair_coeff * * Cu Zr``). Errors name the file and say what to pass.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import ase

logger = logging.getLogger(__name__)

__all__ = [
    "file_sha256",
    "guess_format",
    "parse_types",
    "refuse_prediction_as_label",
    "read_kwargs",
    "iter_structures",
    "read_structures",
    "read_structure",
]

_LAMMPS_DATA_SUFFIXES = (".data", ".lmp", ".lammps", ".lammpsdata")
_LAMMPS_DUMP_SUFFIXES = (".lammpstrj", ".dump", ".lammpsdump")


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex), for provenance records."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def guess_format(path: str | os.PathLike[str]) -> str | None:
    """LAMMPS formats from the file name (ASE mistakes ``*.data`` for another format), else None."""
    name = Path(path).name.lower()
    if name.endswith(_LAMMPS_DATA_SUFFIXES) or name.startswith("data."):
        return "lammps-data"
    if name.endswith(_LAMMPS_DUMP_SUFFIXES) or name.startswith("dump."):
        return "lammps-dump-text"
    return None


def parse_types(text: str | None) -> list[str] | None:
    """``"Cu,Zr"`` or ``"Cu Zr"`` -> ``["Cu", "Zr"]``; None or empty -> None."""
    if text is None:
        return None
    types = [t for t in re.split(r"[,\s]+", text.strip()) if t]
    if not types:
        raise ValueError("--types is empty; give the element of each LAMMPS type, e.g. Cu,Zr")
    return types


def read_kwargs(fmt: str | None, types: Sequence[str] | None) -> dict[str, Any]:
    """The ``ase.io`` keyword arguments that name LAMMPS type numbers ``types`` in ``fmt``."""
    if not types:
        return {}
    from ase.data import atomic_numbers

    unknown = [t for t in types if t not in atomic_numbers]
    if unknown:
        raise ValueError(f"--types must name chemical elements, got {unknown}")
    if fmt == "lammps-data":
        return {"Z_of_type": {k + 1: atomic_numbers[t] for k, t in enumerate(types)}}
    if fmt in ("lammps-dump-text", "lammps-dump-binary"):
        return {"specorder": list(types)}
    raise ValueError(
        f"--types applies to LAMMPS data and dump files only, not to format {fmt!r} "
        "(pass --format lammps-data or lammps-dump-text if the file name does not tell)"
    )


def _check_file(path: str | os.PathLike) -> None:
    if not os.path.exists(path):
        raise FileNotFoundError(f"structure file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"structure {path} is a directory, not a structure file")


def iter_structures(
    path: str | os.PathLike,
    fmt: str | None = None,
    index: str = ":",
    types: Sequence[str] | None = None,
) -> Iterator[tuple[int, ase.Atoms]]:
    """``(k, atoms)`` for the frames ``index`` (ase.io syntax) of ``path``, read lazily."""
    import ase.io
    from ase.io.formats import UnknownFileTypeError

    _check_file(path)
    fmt = fmt or guess_format(path)
    kwargs = read_kwargs(fmt, types)
    try:
        frames = ase.io.iread(path, index=index, format=fmt, **kwargs)
        yield from enumerate(frames)
    except UnknownFileTypeError as exc:
        raise ValueError(
            f"cannot tell the format of {path} ({exc}); pass --format (an ase.io format name)"
        ) from None
    except (IndexError, KeyError) as exc:
        if types and fmt is not None and fmt.startswith("lammps"):
            raise ValueError(_types_too_few(path, types, exc)) from None
        raise ValueError(f"could not read {path} as {fmt or 'a guessed format'}: {exc}") from exc
    except (OSError, StopIteration, UnicodeDecodeError) as exc:
        raise ValueError(f"could not read {path} as {fmt or 'a guessed format'}: {exc}") from exc


def refuse_prediction_as_label(atoms: ase.Atoms, label: str, where: str) -> None:
    """A ValueError when the per-atom array ``label`` of ``atoms`` is a prediction that
    ``symgnn predict`` wrote (listed in ``info["symgnn_predictions"]``), not a label: scoring
    or training against it would compare a model with a model."""
    if label in str(atoms.info.get("symgnn_predictions", "")).split():
        raise ValueError(
            f"{where}: per-atom array `{label}` is a symgnn prediction (listed in "
            "info symgnn_predictions by `symgnn predict`), not a label; give the file with the "
            "labels (predict keeps a label array under its own name and writes `<name>_pred`)"
        )


def _types_too_few(path: str | os.PathLike, types: Sequence[str], exc: BaseException) -> str:
    """The message for a LAMMPS file with a type number ``--types`` does not name."""
    which = ""
    if isinstance(exc, KeyError) and exc.args:
        try:
            which = f" atom type {int(exc.args[0])}"
        except (TypeError, ValueError):
            which = ""
    return (
        f"{path} has{which or ' an atom type'} that --types {','.join(types)} does not name "
        f"(it names types 1 to {len(types)}); give the element of every LAMMPS type, "
        "e.g. --types Cu,Zr"
    )


def read_structures(
    path: str | os.PathLike,
    fmt: str | None = None,
    index: str = ":",
    types: Sequence[str] | None = None,
) -> list[ase.Atoms]:
    """The frames ``index`` (default: all) of ``path``; none is an error."""
    frames = [atoms for _, atoms in iter_structures(path, fmt, index, types)]
    if not frames:
        raise ValueError(f"no structures in {path} (index {index!r})")
    return frames


def read_structure(
    path: str | os.PathLike,
    fmt: str | None = None,
    index: str = "-1",
    types: Sequence[str] | None = None,
) -> ase.Atoms:
    """One frame of ``path`` (default: the last); an ``index`` selecting several is an error."""
    frames = read_structures(path, fmt, index, types)
    if len(frames) != 1:
        raise ValueError(f"--index {index!r} selects {len(frames)} frames; select one frame")
    return frames[0]
