"""The force engine of the saddle search: a region of a glass in the in-process LAMMPS of
:mod:`symgnn_ase.potential`, one instance per search.

:class:`ForceEngine` holds a :class:`~symgnn_ase.label.carve.Region` in a LAMMPS built by
:func:`symgnn_ase.potential.lammps.open_evaluator` and returns the energy and the forces on the
moving atoms for any positions of them, counting the calls. The potential file itself (checked
before any work, with the ranges of its tables that give the exact frozen-shell width) is
:func:`symgnn_ase.potential.eam.load_potential`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from ..potential.eam import Potential
from ..potential.lammps import (
    gather,
    minimize_atoms,
    open_evaluator,
    scatter_positions,
)

if TYPE_CHECKING:
    from .carve import Region

logger = logging.getLogger(__name__)

__all__ = ["ForceEngine", "open_engine_lammps", "relax_glass"]


def open_engine_lammps(atoms, potential: Potential, inert_from: int | None = None):
    """:func:`~symgnn_ase.potential.lammps.open_evaluator` with the OPT pair style for big
    regions, one force evaluation per ``run 1``."""
    return open_evaluator(atoms, potential, inert_from, opt=True)


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
    result = minimize_atoms(atoms, potential, ftol, maxiter, opt=True, wrapped=True)
    out = atoms.copy()
    out.set_positions(result.positions)
    out.wrap()
    fmax = float(np.sqrt((result.forces**2).sum(axis=1).max()))
    logger.info(
        "relaxed the glass: %d atoms, E %.4f -> %.4f eV, largest force %.2e eV/Å",
        len(atoms),
        result.energy_before,
        result.energy_after,
        fmax,
    )
    return out
