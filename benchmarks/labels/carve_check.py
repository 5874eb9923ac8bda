"""Does the carve-out change saddle energies? Two measurements on the validation glass.

    .venv/bin/python benchmarks/labels/carve_check.py same-searches   # A
    .venv/bin/python benchmarks/labels/carve_check.py far-field       # B

A. The same searches (same atom, same seed) in the carved sphere and in the full periodic box
   with the same moving atoms: the exact shell makes the forces identical (to round-off), so
   the searches should find the same saddles.
B. The frozen far field: saddles of accepted events of the validation run (their recorded
   saddle displacements), converged again (Lanczos + climb) with every atom of the box free,
   and with a larger moving sphere (12 Å) in a carve-out; the barrier change is the
   relaxation the frozen atoms beyond ``active_radius`` forbid. Control: the same
   reconvergence in the run's own carve-out gives back the recorded barrier.

Reads benchmarks/labels/valid/ (run validate.py first); appends results to
benchmarks/labels/valid/carve_check.jsonl (one line per comparison, resumable).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import time
from pathlib import Path

import numpy as np

from symgnn_ase.label.artn import Search, SearchFailed, SearchTask, _Fire, run_search
from symgnn_ase.label.carve import carve_region
from symgnn_ase.label.config import LabelConfig
from symgnn_ase.label.engine import ForceEngine, load_potential

HERE = Path(__file__).resolve().parent
RUN = HERE / "valid"
OUT = RUN / "carve_check.jsonl"
logger = logging.getLogger("carve_check")


def _done() -> set[str]:
    if not OUT.exists():
        return set()
    return {json.loads(line)["key"] for line in OUT.read_text().splitlines()}


def _write(entry: dict) -> None:
    with open(OUT, "a") as fh:
        fh.write(json.dumps(entry) + "\n")
    logger.info("%s", entry)


def _glass():
    import ase.io

    return ase.io.read(RUN / "relaxed.extxyz")


def same_searches(atoms: list[int], search: int) -> None:
    pot = load_potential("CuZr_mm.eam.fs")
    glass = _glass()
    cfg = LabelConfig()
    done = _done()
    for atom in atoms:
        key = f"same:{atom}:{search}"
        if key in done:
            continue
        row: dict = {"key": key, "atom": atom, "search": search}
        for name, carve in (("carve", True), ("full", False)):
            region = carve_region(
                glass.get_positions(),
                glass.cell.array,
                glass.get_chemical_symbols(),
                atom,
                cfg.active_radius,
                pot.exact_shell,
                pot,
                carve,
            )
            rec = run_search(SearchTask(atom, search, region, pot, cfg))
            row[name] = {
                k: rec.get(k)
                for k in ("status", "barrier", "delta_e", "force_calls", "cpu_s", "region_atoms")
            }
        _write(row)


def _reconverge(region, pot, cfg: LabelConfig, moves: list) -> dict:
    """Converge a saddle again from the recorded saddle displacements, in ``region``."""
    t0 = time.thread_time()
    with ForceEngine(region, pot) as engine:
        search = Search(engine, dataclasses.replace(cfg, lanczos_max_iter=40, lanczos_tol=1e-3))
        x0 = engine.initial().reshape(-1)
        e0, f0 = search.force(x0)
        index = {int(g): k for k, g in enumerate(region.ids[region.moving])}
        dx = np.zeros((x0.size // 3, 3))
        for gid, *d in moves:
            dx[index[int(gid)]] = d
        x = x0 + dx.reshape(-1)
        energy, f = search.force(x)
        search.stage = "activation"
        lam, v = search.lanczos(x, f, dx.reshape(-1))
        try:
            x, energy, f, v, lam, steps = search.climb(x, energy, f, v, lam, _Fire(cfg), e0)
            status = "saddle"
        except SearchFailed as exc:
            status, steps = f"failed: {exc}", -1
        return {
            "status": status,
            "barrier": energy - e0,
            "eigenvalue": lam,
            "steps": steps,
            "initial_fmax": float(np.sqrt((f0.reshape(-1, 3) ** 2).sum(axis=1).max())),
            "force_calls": engine.calls,
            "cpu_s": round(time.thread_time() - t0, 2),
            "moving_atoms": engine.n_moving,
        }


def far_field(count: int) -> None:
    pot = load_potential("CuZr_mm.eam.fs")
    glass = _glass()
    cfg = LabelConfig()
    records = [json.loads(line) for line in (RUN / "searches.jsonl").read_text().splitlines()]
    accepted = [r for r in records if r["status"] == "accepted"][:count]
    done = _done()
    args = (glass.get_positions(), glass.cell.array, glass.get_chemical_symbols())
    variants = {
        "carve_8": (8.0, True),
        "carve_12": (12.0, True),
        "full_all_free": (math.inf, False),
    }
    for rec in accepted:
        key = f"far:{rec['atom']}:{rec['search']}"
        if key in done:
            continue
        row: dict = {"key": key, "atom": rec["atom"], "search": rec["search"]}
        row["recorded_barrier"] = rec["barrier"]
        for name, (radius, carve) in variants.items():
            region = carve_region(*args, rec["atom"], radius, pot.exact_shell, pot, carve)
            row[name] = _reconverge(region, pot, cfg, rec["saddle_moves"])
        _write(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["same-searches", "far-field"])
    parser.add_argument("--atoms", default="", help="same-searches: atoms (default: 2 of the run)")
    parser.add_argument("--search", type=int, default=0)
    parser.add_argument("--count", type=int, default=4, help="events for far-field")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.what == "same-searches":
        from symgnn_ase.label.selection import parse_selection

        # default: the first two atoms of the validation run's selection
        atoms = [int(a) for a in args.atoms.split(",") if a]
        atoms = atoms or parse_selection("random:30", len(_glass()), seed=0)[:2].tolist()
        same_searches(atoms, args.search)
    else:
        far_field(args.count)


if __name__ == "__main__":
    main()
