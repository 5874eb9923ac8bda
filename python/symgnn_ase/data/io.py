"""Reading structure files (any format ``ase.io`` reads, LAMMPS type names), content hashes."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = [
    "file_sha256",
    "read_structures",
    "guess_format",
    "parse_types",
    "read_kwargs",
    "iter_frames",
    "read_frame",
]

_LAMMPS_DATA_SUFFIXES = (".data", ".lmp", ".lammps", ".lammpsdata")
_LAMMPS_DUMP_SUFFIXES = (".lammpstrj", ".dump", ".lammpsdump")


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_structures(path: str | os.PathLike) -> list:
    """All frames of a structure file ``ase.io.read`` understands."""
    import ase.io

    if not os.path.exists(path):
        raise FileNotFoundError(f"structure file not found: {path}")
    frames = ase.io.read(path, index=":")
    if not isinstance(frames, list):
        frames = [frames]
    if not frames:
        raise ValueError(f"no structures in {path}")
    return frames


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


def read_kwargs(fmt: str | None, types: list[str] | None) -> dict[str, Any]:
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


def iter_frames(
    path: str, fmt: str | None, index: str, types: list[str] | None
) -> Iterator[tuple[int, Any]]:
    import ase.io
    from ase.io.formats import UnknownFileTypeError

    if not os.path.exists(path):
        raise FileNotFoundError(f"input file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"input {path} is a directory, not a structure file")
    fmt = fmt or guess_format(path)
    kwargs = read_kwargs(fmt, types)
    try:
        frames = ase.io.iread(path, index=index, format=fmt, **kwargs)
        yield from enumerate(frames)
    except UnknownFileTypeError as exc:
        raise ValueError(
            f"cannot tell the format of {path} ({exc}); pass --format (an ase.io format name)"
        ) from None
    except (OSError, StopIteration, IndexError, KeyError, UnicodeDecodeError) as exc:
        raise ValueError(f"could not read {path} as {fmt or 'a guessed format'}: {exc}") from exc


def read_frame(path: str, fmt: str | None, index: str, types: list[str] | None) -> Any:
    import ase.io
    from ase.io.formats import UnknownFileTypeError

    if not os.path.exists(path):
        raise FileNotFoundError(f"structure file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"structure {path} is a directory, not a structure file")
    fmt = fmt or guess_format(path)
    try:
        atoms = ase.io.read(path, index=index, format=fmt, **read_kwargs(fmt, types))
    except UnknownFileTypeError as exc:
        raise ValueError(f"cannot tell the format of {path} ({exc}); pass --format") from None
    except (OSError, StopIteration, IndexError, KeyError, UnicodeDecodeError) as exc:
        raise ValueError(f"could not read {path} as {fmt or 'a guessed format'}: {exc}") from exc
    if isinstance(atoms, list):
        raise ValueError(f"--index {index!r} selects {len(atoms)} frames; select one frame")
    return atoms
