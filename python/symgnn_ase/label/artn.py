"""One ARTn saddle search around one atom, from kick to the final minimum.

The steps (parameters and sources in :class:`~symgnn_ase.label.config.LabelConfig`):

1. minimize the region (L-BFGS): the initial state ``x0``, energy ``E0``;
2. kick: a random direction ``d`` on the selected atom and its moving neighbours within
   ``kick_radius`` (seeded by ``(seed, atom, search)``);
3. basin: push along ``d`` by ``basin_step``, relax perpendicular to ``d`` (FIRE), and after
   ``basin_min_steps`` pushes compute the lowest Hessian eigenpair (Lanczos on
   finite-difference forces) until it falls below ``eigenvalue_threshold``;
4. activation: step along the lowest mode ``v`` against the force, ``-(F.v)/|lambda|`` capped
   at ``activation_step_max``, relax perpendicular to ``v`` (FIRE), recompute the eigenpair
   (Lanczos from the previous ``v``), until ``|F| < saddle_force_tol``;
5. push over: minimize from ``x_s + push_over v`` and ``x_s - push_over v``; one side must
   return to ``x0`` (else ``disconnected``), the other is the final state (if both return to
   ``x0``: ``no_event``).

:func:`run_search` runs one search in a fresh LAMMPS and returns its record (a dict of JSON
types). Numerical dead ends are records with ``status`` ``failed`` and a ``reason``; anything
else (a broken worker, a LAMMPS error) raises, so that the search is redone on resume.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.io import file_sha256
from ..potential.eam import Potential
from .carve import Region
from .config import RECORD_VERSION, LabelConfig
from .engine import ForceEngine

logger = logging.getLogger(__name__)

__all__ = ["Search", "SearchFailed", "SearchTask", "exchanged_atoms", "run_search"]

# L-BFGS: initial inverse curvature (Å²/eV), largest atom move per step (Å), energy noise (eV)
_LBFGS_H0 = 1.0 / 70.0
_LBFGS_MAX_MOVE = 0.2
_ENERGY_NOISE = 1e-8
# FIRE constants (Bitzek et al. 2006)
_FIRE_N_MIN, _FIRE_F_INC, _FIRE_F_DEC, _FIRE_ALPHA, _FIRE_F_ALPHA = 5, 1.1, 0.5, 0.1, 0.99


class SearchFailed(Exception):
    """A search that ends without an event: the message is the record's ``reason``."""


@dataclass(frozen=True)
class SearchTask:
    """Everything one search needs; picklable, sent to local or Dask workers."""

    atom: int
    search: int
    region: Region
    potential: Potential
    config: LabelConfig


def _fmax(f: np.ndarray) -> float:
    return float(np.sqrt((f.reshape(-1, 3) ** 2).sum(axis=1).max()))


def _max_move(dx: np.ndarray) -> float:
    return float(np.sqrt((dx.reshape(-1, 3) ** 2).sum(axis=1).max()))


def exchanged_atoms(
    x0: np.ndarray, x1: np.ndarray, symbols: np.ndarray, tol: float
) -> np.ndarray | None:
    """The atoms that moved by ``tol`` or more, when ``x1`` is ``x0`` with them permuted among
    themselves (each onto the initial place of another atom of its element, one to one, within
    ``tol``): the same configuration, no event. None otherwise (or when no atom moved)."""
    p0, p1 = x0.reshape(-1, 3), x1.reshape(-1, 3)
    moved = np.flatnonzero(np.sqrt(((p1 - p0) ** 2).sum(axis=1)) >= tol)
    if moved.size < 2:
        return None
    dist = np.sqrt(((p1[moved, None, :] - p0[None, moved, :]) ** 2).sum(axis=2))
    target = dist.argmin(axis=1)
    ok = (
        np.all(dist[np.arange(moved.size), target] < tol)
        and np.unique(target).size == moved.size
        and np.all(symbols[moved] == symbols[moved[target]])
    )
    return moved if ok else None


class _Fire:
    """FIRE (unit masses), optionally restricted to the space perpendicular to a vector."""

    def __init__(self, cfg: LabelConfig) -> None:
        self.cfg = cfg
        self.reset()

    def reset(self) -> None:
        self.dt = self.cfg.fire_dt
        self.alpha = _FIRE_ALPHA
        self.n_pos = 0
        self.vel: np.ndarray | None = None

    def step(self, x: np.ndarray, force: np.ndarray, normal: np.ndarray | None) -> np.ndarray:
        if normal is not None:
            force = force - (force @ normal) * normal
        if self.vel is None:
            self.vel = np.zeros_like(x)
        elif normal is not None:
            self.vel -= (self.vel @ normal) * normal
        power = float(self.vel @ force)
        if power > 0.0:
            fnorm = float(np.linalg.norm(force))
            if fnorm > 0.0:
                vnorm = float(np.linalg.norm(self.vel))
                self.vel = (1.0 - self.alpha) * self.vel + self.alpha * vnorm * force / fnorm
            self.n_pos += 1
            if self.n_pos > _FIRE_N_MIN:
                self.dt = min(self.dt * _FIRE_F_INC, self.cfg.fire_dt_max)
                self.alpha *= _FIRE_F_ALPHA
        else:
            self.vel[:] = 0.0
            self.dt *= _FIRE_F_DEC
            self.alpha = _FIRE_ALPHA
            self.n_pos = 0
        self.vel += self.dt * force
        dx = self.dt * self.vel
        move = _max_move(dx)
        if move > self.cfg.fire_max_move:
            dx *= self.cfg.fire_max_move / move
        return x + dx


class Search:
    """The stages of an ARTn search on one force engine (flat position vectors [3m])."""

    def __init__(self, engine: ForceEngine, cfg: LabelConfig) -> None:
        self.engine = engine
        self.cfg = cfg
        self.stage = "initial"
        self.calls: dict[str, int] = {}

    # -- forces, minimization, curvature ------------------------------------------------------
    def force(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        energy, f = self.engine(x.reshape(-1, 3))
        self.calls[self.stage] = self.calls.get(self.stage, 0) + 1
        if not (np.isfinite(energy) and np.all(np.isfinite(f))):
            raise SearchFailed(f"non-finite energy or forces in stage {self.stage}")
        return energy, f.reshape(-1)

    def minimize(
        self, x: np.ndarray, energy: float | None = None, f: np.ndarray | None = None
    ) -> tuple[np.ndarray, float, np.ndarray]:
        """L-BFGS with a backtracking step to ``min_fmax``."""
        cfg = self.cfg
        if energy is None or f is None:
            energy, f = self.force(x)
        hist: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=cfg.lbfgs_memory)
        for _ in range(cfg.min_max_steps):
            if _fmax(f) < cfg.min_fmax:
                return x, energy, f
            q = -f
            alphas = []
            for s, y, rho in reversed(hist):
                a = rho * float(s @ q)
                q = q - a * y
                alphas.append(a)
            if hist:
                s, y, _ = hist[-1]
                q = q * (float(s @ y) / float(y @ y))
            else:
                q = q * _LBFGS_H0
            for (s, y, rho), a in zip(hist, reversed(alphas), strict=True):
                q = q + s * (a - rho * float(y @ q))
            p = -q
            if float(p @ f) <= 0.0:
                hist.clear()
                p = _LBFGS_H0 * f
            move = _max_move(p)
            if move > _LBFGS_MAX_MOVE:
                p *= _LBFGS_MAX_MOVE / move
            for _ in range(10):
                x_new = x + p
                e_new, f_new = self.force(x_new)
                if e_new <= energy + _ENERGY_NOISE:
                    break
                p *= 0.5
            else:
                raise SearchFailed(f"minimization stalled in stage {self.stage}")
            s, y = x_new - x, f - f_new
            sy = float(s @ y)
            if sy > 1e-12:
                hist.append((s, y, 1.0 / sy))
            x, energy, f = x_new, e_new, f_new
        raise SearchFailed(
            f"minimization not converged in {cfg.min_max_steps} steps ({self.stage})"
        )

    def lanczos(self, x: np.ndarray, f: np.ndarray, start: np.ndarray) -> tuple[float, np.ndarray]:
        """Lowest eigenpair of the Hessian at ``x`` (forces ``f`` there), from ``start``."""
        cfg = self.cfg
        delta = cfg.lanczos_delta

        stage = self.stage

        def hessian_times(q: np.ndarray) -> np.ndarray:
            self.stage = f"{stage}_lanczos"
            try:
                return -(self.force(x + delta * q)[1] - f) / delta
            finally:
                self.stage = stage

        basis = [start / np.linalg.norm(start)]
        w = hessian_times(basis[0])
        alphas, betas = [float(basis[0] @ w)], []
        w = w - alphas[0] * basis[0]
        lam, coeffs = alphas[0], np.ones(1)
        for _ in range(1, cfg.lanczos_max_iter):
            for b in basis:
                w = w - float(b @ w) * b
            beta = float(np.linalg.norm(w))
            if beta < 1e-10:
                break
            basis.append(w / beta)
            betas.append(beta)
            w = hessian_times(basis[-1]) - beta * basis[-2]
            alphas.append(float(basis[-1] @ w))
            w = w - alphas[-1] * basis[-1]
            tri = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
            values, vectors = np.linalg.eigh(tri)
            previous, lam, coeffs = lam, float(values[0]), vectors[:, 0]
            if abs(lam - previous) <= cfg.lanczos_tol * abs(lam):
                break
        v = np.asarray(basis).T @ coeffs
        return lam, v / np.linalg.norm(v)

    # -- the search ---------------------------------------------------------------------------
    def run(self, kick_atoms: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
        """Search from the region's positions; returns the outcome fields of a record."""
        out: dict[str, Any] = {}
        try:
            self.stage = "initial"
            x0, e0, _ = self.minimize(self.engine.initial().reshape(-1))
            out["e_initial"] = e0
            out.update(self._activate(x0, e0, kick_atoms, rng))
        except SearchFailed as exc:
            out.update(status="failed", reason=str(exc))
        out["force_calls"] = sum(self.calls.values())
        out["force_calls_by_stage"] = dict(self.calls)
        return out

    def _activate(
        self, x0: np.ndarray, e0: float, kick_atoms: np.ndarray, rng: np.random.Generator
    ) -> dict[str, Any]:
        d = np.zeros((x0.size // 3, 3))
        d[kick_atoms] = rng.standard_normal((kick_atoms.size, 3))
        d = d.reshape(-1) / np.linalg.norm(d)
        fire = _Fire(self.cfg)
        x, energy, f, v, lam, pushes = self.basin(x0, e0, d, fire)
        if float(v @ (x - x0)) < 0.0:
            v = -v
        x, energy, f, v, lam, steps = self.climb(x, energy, f, v, lam, fire, e0)
        out: dict[str, Any] = {
            "e_saddle": energy,
            "barrier": energy - e0,
            "eigenvalue": lam,
            "saddle_force": float(np.linalg.norm(f)),
            "basin_steps": pushes,
            "activation_steps": steps,
            "saddle_moves": self._moves(x - x0),
        }
        if energy - e0 <= self.cfg.min_barrier:
            return {**out, "status": "negative_barrier", "reason": ""}
        return {**out, **self.push_over(x0, e0, x, v, energy)}

    def basin(
        self, x0: np.ndarray, e0: float, d: np.ndarray, fire: _Fire
    ) -> tuple[np.ndarray, float, np.ndarray, np.ndarray, float, int]:
        """Push along ``d`` with perpendicular relaxation until the curvature is negative
        enough; ``(x, E, F, v, lambda, pushes)``."""
        cfg = self.cfg
        self.stage = "basin"
        x, v, lam = x0.copy(), d.copy(), np.inf
        for push in range(1, cfg.basin_max_steps + 1):
            x = x + cfg.basin_step * d
            energy, f = self.force(x)
            for _ in range(cfg.basin_perp_steps):
                x = fire.step(x, f, d)
                energy, f = self.force(x)
            if push >= cfg.basin_min_steps:
                lam, v = self.lanczos(x, f, v)
                logger.debug("basin %d: E-E0 %.4f lambda %.3f", push, energy - e0, lam)
                if lam < cfg.eigenvalue_threshold:
                    return x, energy, f, v, lam, push
        raise SearchFailed(
            f"no curvature below {cfg.eigenvalue_threshold} eV/Å² after "
            f"{cfg.basin_max_steps} pushes (lowest {lam:.3f})"
        )

    def climb(
        self,
        x: np.ndarray,
        energy: float,
        f: np.ndarray,
        v: np.ndarray,
        lam: float,
        fire: _Fire,
        e0: float = 0.0,
    ) -> tuple[np.ndarray, float, np.ndarray, np.ndarray, float, int]:
        """Follow the lowest mode ``v`` (eigenvalue ``lam``) up to the saddle, relaxing
        perpendicular to it; ``(x, E, F, v, lambda, steps)`` at the saddle."""
        cfg = self.cfg
        self.stage = "activation"
        lost = 0
        for step in range(1, cfg.activation_max_steps + 1):
            if lam < 0.0:
                lost = 0
                if float(np.linalg.norm(f)) < cfg.saddle_force_tol:
                    return x, energy, f, v, lam, step
                along = -float(f @ v) / abs(lam)
            else:
                # positive curvature again: keep climbing along the mode, as in the basin
                lost += 1
                if lost > cfg.activation_lost_max:
                    raise SearchFailed(
                        f"curvature positive for {lost} activation steps (at step {step})"
                    )
                along = -np.sign(float(f @ v)) * cfg.activation_step_max
            along = float(np.clip(along, -cfg.activation_step_max, cfg.activation_step_max))
            x = x + along * v
            energy, f = self.force(x)
            # pARTn's nperp_limitation: few perpendicular steps just past the inflection
            # (relaxing fully there loses the saddle), more as the climb goes on
            ramp = cfg.activation_perp_first + cfg.activation_perp_increment * (step - 1)
            for _ in range(min(ramp, cfg.activation_perp_steps)):
                perp = f - (f @ v) * v
                if float(np.linalg.norm(perp)) < 0.5 * cfg.saddle_force_tol:
                    break
                x = fire.step(x, f, v)
                energy, f = self.force(x)
            lam, v_new = self.lanczos(x, f, v)
            v = v_new if float(v_new @ v) >= 0.0 else -v_new
            logger.debug(
                "activation %d: E-E0 %.4f lambda %.3f |F| %.3f F.v %.3f",
                step,
                energy - e0,
                lam,
                np.linalg.norm(f),
                float(f @ v),
            )
        raise SearchFailed(
            f"|F| = {np.linalg.norm(f):.3f} eV/Å after {cfg.activation_max_steps} activation steps"
        )

    def push_over(
        self, x0: np.ndarray, e0: float, x: np.ndarray, v: np.ndarray, e_saddle: float
    ) -> dict[str, Any]:
        """Minimize from both sides of the saddle ``x`` (energy ``e_saddle``); the rejection
        rules on the minima."""
        cfg = self.cfg
        self.stage = "relax"
        sides = []
        for sign in (1.0, -1.0):
            xm, em, _ = self.minimize(x + sign * cfg.push_over * v)
            sides.append((xm, em, _max_move(xm - x0) < cfg.same_minimum_tol))
        out: dict[str, Any] = {"side_distances": [round(_max_move(s[0] - x0), 4) for s in sides]}
        if sides[0][2] and sides[1][2]:
            return {**out, "status": "no_event", "reason": "both sides return to the initial state"}
        if not (sides[0][2] or sides[1][2]):
            return {
                **out,
                "status": "disconnected",
                "reason": "neither side of the saddle returns to the initial state",
            }
        xf, ef, _ = sides[1] if sides[0][2] else sides[0]
        if e_saddle - ef <= cfg.min_reverse_barrier:
            return {
                **out,
                "status": "no_event",
                "reason": f"the final state is not below the saddle (E_saddle - E_final = "
                f"{e_saddle - ef:.4f} eV <= min_reverse_barrier {cfg.min_reverse_barrier} eV): "
                "a flat shoulder, not a barrier between two minima",
                "e_final": ef,
                "delta_e": ef - e0,
            }
        region = self.engine.region
        moving_symbols = np.asarray(region.symbols)[region.moving]
        swapped = exchanged_atoms(x0, xf, moving_symbols, cfg.same_minimum_tol)
        if swapped is not None:
            ids = region.ids[region.moving][swapped]
            return {
                **out,
                "status": "no_event",
                "reason": "the final state is the initial one with atoms of the same element "
                f"exchanged (glass ids {sorted(int(i) for i in ids)})",
                "e_final": ef,
                "delta_e": ef - e0,
            }
        disp = (xf - x0).reshape(-1, 3)
        dist = np.sqrt((disp**2).sum(axis=1))
        moving_ids = region.ids[region.moving]
        return {
            **out,
            "status": "accepted",
            "reason": "",
            "e_final": ef,
            "delta_e": ef - e0,
            "displacement": float(dist.max()),
            "displacement_atom": int(moving_ids[int(dist.argmax())]),
            "displacement_norm": float(np.linalg.norm(disp)),
        }

    def _moves(self, dx: np.ndarray) -> list[list[float]]:
        """[[glass id, dx, dy, dz], ...] of moving atoms displaced by >= record_move_min."""
        disp = dx.reshape(-1, 3)
        dist = np.sqrt((disp**2).sum(axis=1))
        ids = self.engine.region.ids[self.engine.region.moving]
        keep = np.flatnonzero(dist >= self.cfg.record_move_min)
        return [[int(ids[i]), *(round(float(c), 4) for c in disp[i])] for i in keep]


def run_search(task: SearchTask) -> dict[str, Any]:
    """One search in a fresh LAMMPS; the full record of it (JSON types)."""
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    pot = task.potential
    if not pot.path.is_file() or file_sha256(pot.path) != pot.sha256:
        raise FileNotFoundError(
            f"potential {pot.path} is missing or different on this worker "
            f"({socket.gethostname()}): every worker needs the same file at the same path"
        )
    cfg = task.config
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, task.atom, task.search]))
    kick = task.region.moving_within(cfg.kick_radius)
    with ForceEngine(task.region, pot) as engine:
        outcome = Search(engine, cfg).run(kick, rng)
        n_moving = engine.n_moving
    record: dict[str, Any] = {
        "version": RECORD_VERSION,
        "atom": task.atom,
        "search": task.search,
        "seed": cfg.seed,
        "status": outcome.pop("status"),
        "reason": outcome.pop("reason"),
        **outcome,
        "region_atoms": len(task.region.ids),
        "moving_atoms": n_moving,
        "cpu_s": round(time.thread_time() - cpu0, 3),
        "wall_s": round(time.perf_counter() - wall0, 3),
    }
    return record
