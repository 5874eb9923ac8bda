"""The region a search runs in: a sphere carved out of the relaxed glass, or the whole box.

A carve-out (SEAKMC's active volume in a frozen buffer) keeps the atoms within
``active_radius + shell_width`` of the selected atom, centred in a box padded with vacuum wider
than the potential's reach plus the neighbor skin, so that LAMMPS sees an isolated cluster (no
periodic image within reach, no ghost atoms). Atoms within ``active_radius`` move; the shell
stays frozen at the glass positions. With the shell at least ``Potential.exact_shell`` wide,
forces on the moving atoms and every energy difference equal those of the full periodic box.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..potential.eam import Potential

if TYPE_CHECKING:
    from .config import LabelConfig

logger = logging.getLogger(__name__)

__all__ = ["Region", "box_widths", "carve_region", "check_box", "region_around"]

# vacuum between the cluster and the padded box's faces, beyond the potential's cutoff
_NEIGHBOR_SKIN = 2.0  # open_lammps: `neighbor 2.0 bin`
_PAD_MARGIN = 1.0


@dataclass(frozen=True)
class Region:
    """Atoms of one search: positions in ``cell`` (a periodic LAMMPS box), which move."""

    symbols: tuple[str, ...]
    positions: np.ndarray  # [m, 3] Å
    cell: np.ndarray  # [3, 3] rows a, b, c (lower-triangular)
    ids: np.ndarray  # [m] index in the glass of each atom
    moving: np.ndarray  # [m] bool
    distance: np.ndarray  # [m] distance from the selected atom (minimum image, Å)
    center: int  # region index of the selected atom
    inert_from: int | None = None  # atoms from here on only lend density to others

    def atoms(self):
        from ase import Atoms

        return Atoms(symbols=list(self.symbols), positions=self.positions, cell=self.cell, pbc=True)

    def moving_within(self, radius: float) -> np.ndarray:
        """Indices, among the moving atoms, of those within ``radius`` of the selected atom,
        nearest first (ties by glass index): the order the kick's random rows are assigned in,
        so that a carve-out (whose atoms are in that order) and the full box (in glass order)
        kick the same atoms the same way."""
        dist, ids = self.distance[self.moving], self.ids[self.moving]
        near = np.flatnonzero(dist <= radius)
        return near[np.lexsort((ids[near], dist[near]))]


def box_widths(cell: np.ndarray) -> np.ndarray:
    """Distances between opposite faces of the cell (Å)."""
    cell = np.asarray(cell, dtype=np.float64)
    volume = abs(float(np.linalg.det(cell)))
    cross = [np.cross(cell[1], cell[2]), np.cross(cell[2], cell[0]), np.cross(cell[0], cell[1])]
    return np.array([volume / np.linalg.norm(c) for c in cross])


def check_box(cell: np.ndarray, radius: float, what: str) -> None:
    """A sphere of ``radius`` around any atom must fit in the periodic box (minimum image)."""
    widths = box_widths(cell)
    if not math.isinf(radius) and 2.0 * radius > widths.min():
        raise ValueError(
            f"the box is smaller than the {what}: its diameter 2 x {radius:.2f} = "
            f"{2 * radius:.2f} Å exceeds the box width {widths.min():.2f} Å (face distances "
            f"{np.round(widths, 2).tolist()} Å); use a bigger glass, a smaller active_radius "
            "or shell_width, or carve: false"
        )


def _min_image(positions: np.ndarray, cell: np.ndarray, origin: np.ndarray) -> np.ndarray:
    d = positions - origin
    frac = d @ np.linalg.inv(cell)
    return (frac - np.round(frac)) @ cell


def carve_region(
    positions: np.ndarray,
    cell: np.ndarray,
    symbols: list[str] | tuple[str, ...],
    index: int,
    active_radius: float,
    shell_width: float,
    potential: Potential,
    carve: bool = True,
) -> Region:
    """The region of a search around atom ``index`` of a periodic glass.

    A carve-out lists its atoms by distance from the selected one (the region's atom 0).
    Atoms farther than ``active_radius + potential.rho_range`` cannot feel any move, nor can
    the densities they lend to nearer atoms change: pairs among them are left out of the
    force calls (``Region.inert_from``), which changes the total energy by a constant only.
    ``carve=False`` keeps the whole box (atoms beyond ``active_radius`` frozen; an infinite
    radius moves every atom).
    """
    positions = np.asarray(positions, dtype=np.float64)
    cell = np.asarray(cell, dtype=np.float64)
    n = len(positions)
    if not 0 <= index < n:
        raise ValueError(f"atom {index} is out of range for a glass of {n} atoms")
    d = _min_image(positions, cell, positions[index])
    r = np.linalg.norm(d, axis=1)
    if not carve:
        check_box(cell, active_radius, "active sphere")
        return Region(
            symbols=tuple(symbols),
            positions=positions.copy(),
            cell=cell.copy(),
            ids=np.arange(n),
            moving=r <= active_radius,
            distance=r,
            center=index,
        )
    radius = active_radius + shell_width
    check_box(cell, radius, "carve-out")
    order = np.argsort(r, kind="stable")
    keep = order[r[order] <= radius]
    inert = np.flatnonzero(r[keep] > active_radius + potential.rho_range)
    pad = potential.cutoff + _NEIGHBOR_SKIN + _PAD_MARGIN
    side = 2.0 * (radius + pad)
    region = Region(
        symbols=tuple(symbols[i] for i in keep),
        positions=d[keep] + (radius + pad),
        cell=np.diag([side, side, side]),
        ids=keep,
        moving=r[keep] <= active_radius,
        distance=r[keep],
        center=0,
        inert_from=int(inert[0]) if inert.size else None,
    )
    logger.debug(
        "atom %d: carve-out of %d atoms (%d moving), radius %.2f Å",
        index,
        keep.size,
        int(region.moving.sum()),
        radius,
    )
    return region


def region_around(
    glass, index: int, cfg: LabelConfig, potential: Potential, carve: bool | None = None
) -> Region:
    """:func:`carve_region` of atom ``index`` of an ``ase.Atoms`` glass with the protocol's
    radius and shell (``shell_width`` or the potential's exact shell); ``carve`` overrides
    ``cfg.carve`` (False: the full box, the reference of the carve-out checks)."""
    return carve_region(
        glass.get_positions(),
        glass.cell.array,
        glass.get_chemical_symbols(),
        index,
        cfg.active_radius,
        cfg.shell(potential),
        potential,
        cfg.carve if carve is None else carve,
    )
