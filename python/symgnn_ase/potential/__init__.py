"""The simulation's potential, in one place: the relax protocol (:mod:`.relax`), the
in-process LAMMPS engine for EAM files (:mod:`.lammps`) that labels, quench, thermal data and the
relax protocol all use, and inherent structures (:mod:`.quench`). Importing this package loads
neither torch nor LAMMPS."""

from __future__ import annotations

from .relax import (
    DEFAULT_ALPHA,
    DEFAULT_CAP,
    RelaxProtocol,
    read_relax_metadata,
    relax_positions,
    stamp_relax,
    write_relax_metadata,
)

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_CAP",
    "LammpsPotential",
    "RelaxProtocol",
    "read_relax_metadata",
    "relax_positions",
    "stamp_relax",
    "write_relax_metadata",
]


def __getattr__(name: str):
    if name == "LammpsPotential":
        from .lammps import LammpsPotential

        return LammpsPotential
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
