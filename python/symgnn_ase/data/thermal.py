"""Thermal snapshots of labelled glasses: in-process LAMMPS MD with an EAM potential.

The barrier is a property of the inherent structure, so a snapshot of a glass at temperature T
keeps the relaxed glass's label for every atom. Atoms are matched by identity (LAMMPS atom id =
index + 1 in the source structure), never by position: :func:`attach_labels` takes the ids in
whatever order a snapshot lists them. The LAMMPS engine itself is :mod:`symgnn_ase.potential`
(``potential.lammps``: ``open_lammps``, ``minimize``, ...; ``potential.eam``: the file lookup).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from ..potential.lammps import (
    gather,
    minimize,
    open_lammps,
    scatter_positions,
)

logger = logging.getLogger(__name__)

__all__ = ["attach_labels", "run_thermal"]


def run_thermal(
    atoms,
    potential: str | os.PathLike,
    temps: Sequence[float],
    time_ps: float,
    snapshots_ps: Sequence[float],
    seeds: Mapping[float, int],
    timestep_ps: float = 0.002,
    tdamp_ps: float = 0.1,
    want_minimized: bool = True,
) -> Iterator[tuple[float, np.ndarray, list[np.ndarray], list[dict]]]:
    """Minimize ``atoms``, then NVT at each T from the minimized glass.

    Yields ``(T, ids, positions_per_snapshot, info_per_snapshot)``; T = 0 is the minimized
    glass itself (when ``want_minimized``). ``ids`` are the 0-based indices of ``atoms``.
    """
    if any(t <= 0 for t in temps):
        raise ValueError(f"temperatures must be > 0 K, got {list(temps)}")
    if any(not 0 < s <= time_ps for s in snapshots_ps):
        raise ValueError(f"snapshot times must be in (0, {time_ps}] ps, got {list(snapshots_ps)}")
    n = len(atoms)
    ids = np.arange(n)
    lmp = open_lammps(atoms, potential)
    try:
        lmp.command(f"timestep {timestep_ps!r}")
        minimize(lmp)
        x_min = gather(lmp, "x", n)
        if want_minimized:
            yield 0.0, ids, [x_min], [{"temperature_K": 0.0, "time_ps": 0.0}]
        steps = sorted({int(round(s / timestep_ps)) for s in snapshots_ps})
        for t in temps:
            t = float(t)
            scatter_positions(lmp, x_min)
            lmp.command("reset_timestep 0")
            seed = int(seeds[t])
            lmp.command(f"velocity all create {t!r} {seed} mom yes rot no dist gaussian")
            lmp.command(f"fix thermo_nvt all nvt temp {t!r} {t!r} {tdamp_ps!r}")
            done, frames, infos = 0, [], []
            for s in steps:
                lmp.command(f"run {s - done}")
                done = s
                frames.append(gather(lmp, "x", n))
                infos.append(
                    {
                        "temperature_K": float(t),
                        "time_ps": s * timestep_ps,
                        "seed": seed,
                        "md_temperature_K": float(lmp.get_thermo("temp")),
                    }
                )
            lmp.command("unfix thermo_nvt")
            yield float(t), ids, frames, infos
    finally:
        lmp.close()


def attach_labels(
    reference,
    ids: np.ndarray,
    positions: np.ndarray,
    label_keys: Sequence[str] = ("energy_barrier",),
):
    """An Atoms of ``reference``'s species, cell and labels at ``positions``.

    ``ids[k]`` is the index in ``reference`` of the atom at ``positions[k]`` (any order: a
    shuffled or wrapped snapshot keeps each atom's label). The result lists atoms in the
    reference's order and carries ``displacement`` (minimum image, Å) from the reference.
    """
    from ase import Atoms

    ids = np.asarray(ids)
    positions = np.asarray(positions, dtype=np.float64)
    n = len(reference)
    if positions.shape != (ids.size, 3):
        raise ValueError(f"positions must be [{ids.size}, 3], got {list(positions.shape)}")
    if ids.size != n or not np.array_equal(np.sort(ids), np.arange(n)):
        raise ValueError(
            f"ids must be a permutation of 0..{n - 1} (one per atom of the reference), got "
            f"{ids.size} ids in [{ids.min() if ids.size else '-'}, {ids.max() if ids.size else '-'}]"
        )
    order = np.empty(n, dtype=np.int64)
    order[ids] = np.arange(n)
    pos = positions[order]
    out = Atoms(
        symbols=reference.get_chemical_symbols(),
        positions=pos,
        cell=reference.cell.array,
        pbc=reference.pbc,
    )
    for key in label_keys:
        if key in reference.arrays:
            out.arrays[key] = np.array(reference.arrays[key], copy=True)
    if "atom_id" in reference.arrays:
        out.arrays["atom_id"] = np.array(reference.arrays["atom_id"], copy=True)
    cell = reference.cell.array
    d = pos - reference.get_positions()
    frac = d @ np.linalg.inv(cell)
    out.arrays["displacement"] = (frac - np.round(frac)) @ cell
    return out
