"""Every parameter of the saddle-search protocol, with the step it controls and its source.

References (short keys used in the field docs):

- **ART**: G. T. Barkema, N. Mousseau, "Event-based relaxation of continuous disordered systems",
  Phys. Rev. Lett. 77, 4358 (1996): kick, push out of the basin, climb to the saddle with
  perpendicular relaxation.
- **ARTn**: R. Malek, N. Mousseau, "Dynamics of Lennard-Jones clusters: a characterization of the
  activation-relaxation technique", Phys. Rev. E 62, 7723 (2000): the lowest Hessian eigenpair by
  Lanczos on finite-difference forces, the eigenvalue threshold that ends the basin phase.
- **ARTn-2011**: E. Machado-Charry et al., "Optimized energy landscape exploration using the ab
  initio based activation-relaxation technique", J. Chem. Phys. 135, 034102 (2011): force-call
  cost of each stage, convergence on the total force, push over the saddle, minimize.
- **Cances-2009**: E. Cancès, F. Legoll, M.-C. Marinica, K. Minoukadeh, F. Willaime, "Some
  improvements of the activation-relaxation technique method for finding transition pathways on
  potential energy surfaces", J. Chem. Phys. 130, 114711 (2009): the Newton step along the
  negative mode, capped.
- **pARTn**: M. Poberžnik et al., "pARTn: a plugin implementation of the activation relaxation
  technique nouveau that takes over the FIRE minimization algorithm", Comput. Phys. Commun. 295,
  108961 (2024): FIRE for the perpendicular relaxation.
- **FIRE**: E. Bitzek, P. Koskinen, F. Gähler, M. Moseler, P. Gumbsch, "Structural relaxation made
  simple", Phys. Rev. Lett. 97, 170201 (2006).
- **Fan-2014**: Y. Fan, T. Iwashita, T. Egami, "How thermally activated deformation starts in
  metallic glass", Nat. Commun. 5, 5083 (2014): ARTn on Cu-Zr glasses with a Mendelev EAM,
  started by perturbing one atom and its nearest neighbours.
- **SEAKMC**: H. Xu, Y. N. Osetsky, R. E. Stoller, "Simulating complex atomistic processes:
  on-the-fly kinetic Monte Carlo scheme with selective active volumes", Phys. Rev. B 84, 132103
  (2011): saddle searches in an active volume around the defect inside a frozen buffer.
- **ART nouveau**: the code of N. Mousseau's group; its input settings are named in the field
  docs (``Increment_Size`` ...) to say which of them a field plays the part of, not that the
  values are its defaults.
- **L-BFGS**: J. Nocedal, "Updating quasi-Newton matrices with limited storage", Math. Comp. 35,
  773 (1980).

Values without a literature value are this package's choices; docs/labels.md says how each was
checked. Units: Å, eV, eV/Å (forces), eV/Å² (curvatures).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..potential.eam import Potential

__all__ = ["LabelConfig", "RECORD_VERSION"]

# bump when a change of the search makes old records incomparable
# 2: exchange and flat-shoulder events are no_event, min_reverse_barrier, basin_max_steps 12
#    (protocol 3: kick_radius 3.7, basin_max_steps 25; the record format is unchanged)
RECORD_VERSION = 2


@dataclass(frozen=True)
class LabelConfig:
    """The protocol; ``LabelConfig.from_mapping(yaml_dict)`` checks types and ranges."""

    # -- what is computed -------------------------------------------------------------------
    searches: int = 10
    """Accepted events wanted per atom; the label is the mean activation energy over them."""
    max_attempts: int | None = None
    """Searches tried per atom at most (None: ``25 * searches``: about a quarter of the
    searches are accepted on train0, docs/labels.md); an atom that reaches it keeps
    the mean of the events it has (or NaN with none)."""
    seed: int = 0
    """Search k of atom i draws its kick from ``numpy.random.SeedSequence([seed, i, k])``."""

    # -- step 1: relax the glass at fixed cell (LAMMPS ``minimize``, conjugate gradient) ------
    relax_ftol: float = 1e-3
    """LAMMPS ``minimize`` force tolerance (2-norm of the whole force vector, eV/Å)."""
    relax_maxiter: int = 20000
    """LAMMPS ``minimize`` iterations at most (the per-search minimization refines it)."""

    # -- carve-out (SEAKMC active volume in a frozen buffer) ----------------------------------
    carve: bool = True
    """True: forces on a sphere of radius ``active_radius + shell_width`` around the atom,
    cut out of the relaxed glass (non-periodic). False: the whole periodic box (reference)."""
    active_radius: float = 8.0
    """Atoms within this distance (Å) of the selected atom move; all others stay frozen at
    the relaxed glass positions (SEAKMC active volume). ``.inf`` with ``carve: false``: every
    atom of the box moves."""
    shell_width: float | None = None
    """Frozen shell thickness (Å) around the active sphere. None: ``max(r_phi, 2 r_rho)`` read
    from the EAM tables, with which the forces on moving atoms and every energy difference
    are those of the full box exactly (an embedding density needs neighbours up to r_rho
    away, whose own density needs r_rho more)."""

    # -- step 2: kick (ART; Fan-2014 for the local perturbation in Cu-Zr) --------------------
    kick_radius: float = 3.7
    """The selected atom and its moving neighbours within this distance (Å) get a random
    displacement direction (ART nouveau ``Type_of_Events local``,
    ``Radius_Initial_Deformation``; Fan-2014 perturbs an atom and its nearest neighbours).
    3.7 Å is the first coordination shell (about 14 atoms); 0 pushes the selected atom alone,
    as pARTn's kinetic Monte Carlo driver does by default. On train0 (the same 4 atoms and
    seeds, docs/labels.md) the atom alone with 12 pushes had 14 of 925 searches accepted
    (1.5 %), with 25 pushes 0 of 10, and the first shell with 25 pushes 2 of 14."""

    # -- step 3: leave the harmonic well (ART/ARTn) -------------------------------------------
    basin_step: float = 0.1
    """Norm (Å) of each push along the kick direction (ART nouveau ``Increment_Size``)."""
    basin_perp_steps: int = 10
    """Perpendicular FIRE steps after each push (ART nouveau ``Max_Perp_Moves_Basin``). With 3, the
    basin was left far above the valley floor and 7 of 8 test searches lost the negative
    curvature while climbing (docs/labels.md)."""
    basin_min_steps: int = 3
    """Pushes before the first Lanczos check (ART nouveau ``Min_Number_KSteps``)."""
    basin_max_steps: int = 25
    """Pushes at most (ART nouveau ``Max_Iter_Basin``); a search still without negative
    curvature fails (``failed``). 25 pushes of 0.1 Å spread over the kicked first shell move
    each of its atoms about 0.7 Å. With the atom alone (``kick_radius`` 0) events found after
    more than 12 pushes had it forced 2-2.6 Å through its first shell, with barriers of
    2.2-4.4 eV (docs/labels.md); the first version allowed 60."""
    eigenvalue_threshold: float = -0.5
    """Leave the basin when the lowest Hessian eigenvalue falls below it (eV/Å²; ART nouveau
    ``Eigenvalue_Threshold``)."""

    # -- Lanczos (ARTn): lowest eigenpair of the Hessian of the moving atoms -----------------
    lanczos_delta: float = 0.01
    """Finite-difference step (Å) of the Hessian-vector product ``-(F(x+d v)-F(x))/d`` (ART nouveau ``delta_disp_Lanczos``)."""
    lanczos_max_iter: int = 16
    """Lanczos vectors at most per call (ART nouveau ``Number_Lanczos_Vectors``)."""
    lanczos_tol: float = 1e-2
    """Stop when the eigenvalue changes by less than this fraction between iterations."""

    # -- step 4: converge to the saddle (ARTn; Newton step along the mode, Cances-2009) ------
    saddle_force_tol: float = 0.05
    """Saddle reached when the 2-norm of the force on the moving atoms is below it (eV/Å;
    ART nouveau ``Exit_Force_Threshold``, also on the total force)."""
    activation_step_max: float = 0.1
    """Cap (Å, norm) of the step along the lowest mode, ``-(F.v)/|lambda|`` (Cances-2009)."""
    activation_perp_first: int = 4
    """Perpendicular FIRE steps at the first activation iteration; iteration k allows
    ``first + increment * (k - 1)``, at most ``activation_perp_steps`` (pARTn
    ``nperp_limitation``, whose default ramp is 4, 8, 12, 16: relaxing fully just past the
    inflection loses the saddle)."""
    activation_perp_increment: int = 4
    """Added to the perpendicular FIRE steps allowed at each activation iteration (pARTn)."""
    activation_perp_steps: int = 20
    """Perpendicular FIRE steps per activation iteration at most (ART nouveau
    ``Max_Perp_Moves_Activ``); they stop once the perpendicular force is below half of
    ``saddle_force_tol``."""
    activation_lost_max: int = 4
    """Consecutive activation steps with positive curvature allowed (each climbs along the last
    mode by ``activation_step_max``, as in the basin); one more is a failed search."""
    activation_max_steps: int = 300
    """Activation iterations at most (ART nouveau ``Activation_MaxIter``); a search still
    above the force tolerance fails."""

    # -- FIRE (pARTn relaxes perpendicular to the mode with FIRE) -----------------------------
    fire_dt: float = 0.1
    """FIRE initial time step (unit masses: the first step moves an atom by ``dt**2 * F``)."""
    fire_dt_max: float = 0.4
    """FIRE largest time step (stable below 2/sqrt(largest curvature) ~ 0.45 here)."""
    fire_max_move: float = 0.1
    """Largest displacement of any atom in one FIRE step (Å)."""

    # -- step 5: push over and minimize (ARTn-2011), minimizer L-BFGS -------------------------
    push_over: float = 0.2
    """Displacement (Å, norm) from the saddle along the mode, to each side, before minimizing
    (ART nouveau ``Prefactor_Push_Over``)."""
    min_fmax: float = 0.005
    """Minima (the initial state and both sides of the saddle): largest atomic force below
    it (eV/Å)."""
    min_max_steps: int = 2000
    """L-BFGS steps at most per minimization; more is a failed search."""
    lbfgs_memory: int = 20
    """L-BFGS history length (L-BFGS)."""

    # -- step 6: rejection rules ---------------------------------------------------------------
    same_minimum_tol: float = 0.1
    """Two minima are the same when no atom differs by more than this (Å). The side of the
    saddle that matches the initial state must exist (else ``disconnected``); the other side
    must not match it (else ``no_event``)."""
    min_barrier: float = 0.0
    """Events with ``E_saddle - E_initial`` at or below it (eV) are ``negative_barrier``."""
    min_reverse_barrier: float = 0.0
    """Events whose final state is not below the saddle by more than this (eV) are
    ``no_event``: where the mode is flat the push over the saddle can go uphill and the
    minimization end in a shallow minimum at the saddle's own energy (a shoulder, not a
    barrier between two minima; seen on the validation glasses)."""
    duplicate_energy_tol: float = 1e-3
    """An event repeats an earlier accepted one of the same atom when their saddle energies
    differ by less than this (eV) ..."""
    duplicate_position_tol: float = 0.1
    """... and no atom's saddle displacement (from the initial state) differs by more than this
    (Å). Duplicates are recorded, not counted in the label."""
    record_move_min: float = 0.02
    """Saddle displacements of atoms moving at least this much (Å) are kept in the record (for
    the duplicate check and for inspection)."""

    # ------------------------------------------------------------------------------------------
    @property
    def attempts(self) -> int:
        return self.max_attempts if self.max_attempts is not None else 25 * self.searches

    def shell(self, potential: Potential) -> float:
        """Width (Å) of the frozen shell: ``shell_width``, or by default the potential's exact
        shell (``Potential.exact_shell``)."""
        return self.shell_width if self.shell_width is not None else potential.exact_shell

    def protocol(self) -> dict[str, Any]:
        """Fields that change a search's outcome (``searches``/``max_attempts`` only say how
        many are run, so a run may continue with other values)."""
        d = dataclasses.asdict(self)
        d.pop("searches")
        d.pop("max_attempts")
        return d

    def __post_init__(self) -> None:
        problems = [p for f in fields(self) if (p := _check(f.name, getattr(self, f.name)))]
        if problems:
            raise ValueError("invalid label config: " + "; ".join(problems))
        if self.carve and math.isinf(self.active_radius):
            raise ValueError(
                "invalid label config: an infinite active_radius (every atom moves) needs "
                "carve: false"
            )
        if self.kick_radius > self.active_radius:
            raise ValueError(
                f"invalid label config: kick_radius ({self.kick_radius} Å) must not exceed "
                f"active_radius ({self.active_radius} Å): kicked atoms must be free to move"
            )
        if self.max_attempts is not None and self.max_attempts < self.searches:
            raise ValueError(
                f"invalid label config: max_attempts ({self.max_attempts}) must be >= "
                f"searches ({self.searches})"
            )

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None, **overrides: Any) -> LabelConfig:
        """A config from a YAML/JSON mapping; unknown keys are refused with the known ones."""
        merged = dict(values or {})
        merged.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise ValueError(f"unknown label config key(s) {unknown}; known keys: {sorted(known)}")
        return cls(**merged)


_POSITIVE = {
    "relax_ftol",
    "active_radius",
    "basin_step",
    "lanczos_delta",
    "lanczos_tol",
    "saddle_force_tol",
    "activation_step_max",
    "fire_dt",
    "fire_dt_max",
    "fire_max_move",
    "push_over",
    "min_fmax",
    "same_minimum_tol",
    "duplicate_energy_tol",
    "duplicate_position_tol",
    "record_move_min",
}
_COUNTS = {
    "searches": 1,
    "relax_maxiter": 0,
    "basin_perp_steps": 0,
    "basin_min_steps": 1,
    "basin_max_steps": 1,
    "lanczos_max_iter": 2,
    "activation_perp_steps": 0,
    "activation_perp_first": 0,
    "activation_perp_increment": 0,
    "activation_max_steps": 1,
    "activation_lost_max": 0,
    "min_max_steps": 1,
    "lbfgs_memory": 1,
    "seed": 0,
}


def _is_number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def _check(name: str, v: Any) -> str | None:
    if name == "active_radius" and v == math.inf:
        return None  # every atom moves (carve: false only)
    if name in _POSITIVE:
        return None if _is_number(v) and v > 0 else f"{name} must be a number > 0, got {v!r}"
    if name in _COUNTS:
        lo = _COUNTS[name]
        ok = isinstance(v, int) and not isinstance(v, bool) and v >= lo
        return None if ok else f"{name} must be an integer >= {lo}, got {v!r}"
    if name == "max_attempts":
        ok = v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1)
        return None if ok else f"max_attempts must be null or an integer >= 1, got {v!r}"
    if name == "shell_width":
        ok = v is None or (_is_number(v) and v >= 0)
        return None if ok else f"shell_width must be null or a number >= 0, got {v!r}"
    if name == "kick_radius":
        ok = _is_number(v) and v >= 0
        return None if ok else f"kick_radius must be a number >= 0, got {v!r}"
    if name == "carve":
        return None if isinstance(v, bool) else f"carve must be true or false, got {v!r}"
    if name == "eigenvalue_threshold":
        ok = _is_number(v) and v < 0
        return None if ok else f"eigenvalue_threshold must be a number < 0, got {v!r}"
    if name in ("min_barrier", "min_reverse_barrier"):
        return None if _is_number(v) else f"{name} must be a finite number, got {v!r}"
    return None
