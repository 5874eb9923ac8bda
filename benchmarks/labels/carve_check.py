"""Does the carve-out change saddle energies? Two measurements on the validation glass.

    .venv/bin/python benchmarks/labels/carve_check.py same-searches   # A
    .venv/bin/python benchmarks/labels/carve_check.py far-field       # B

A. Accepted searches of the validation run (same atom, same seed) again in the full periodic
   box with the same moving atoms: the exact shell makes the forces identical (to round-off),
   so the searches should find the same saddles.
B. The frozen far field: saddles of accepted events of the validation run (their recorded
   saddle displacements), converged again (Lanczos + climb) with every atom of the box free,
   and with a larger moving sphere (12 Å) in a carve-out; the barrier change is the
   relaxation the frozen atoms beyond ``active_radius`` forbid. Control: the same
   reconvergence in the run's own carve-out gives back the recorded barrier.

Reads a validation run folder (``--run``, default benchmarks/labels/train0: run validate.py
first); appends results to RUN/carve_check.jsonl (one line per comparison, resumable).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np

from symgnn_ase.label.artn import Search, SearchFailed, SearchTask, _Fire, run_search
from symgnn_ase.label.carve import carve_region, region_around
from symgnn_ase.label.config import LabelConfig
from symgnn_ase.label.engine import ForceEngine
from symgnn_ase.potential.eam import load_potential

HERE = Path(__file__).resolve().parent
RUN = HERE / "train0"
OUT = RUN / "carve_check.jsonl"
logger = logging.getLogger("carve_check")


def _done() -> set[str]:
    if not OUT.exists():
        return set()
    return {json.loads(line)["key"] for line in OUT.read_text().splitlines()}


def _write(entry: dict) -> None:
    with open(OUT, "a") as fh:
        fh.write(json.dumps(entry) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    logger.info("%s", entry)


def _glass():
    import ase.io

    return ase.io.read(RUN / "relaxed.extxyz")


def _accepted(count: int) -> list[dict]:
    records = [json.loads(line) for line in (RUN / "searches.jsonl").read_text().splitlines()]
    return [r for r in records if r["status"] == "accepted"][:count]


def same_searches(count: int) -> None:
    """The first ``count`` accepted searches of the run, again in the full periodic box."""
    pot = load_potential("CuZr_mm.eam.fs")
    glass = _glass()
    cfg = LabelConfig()
    done = _done()
    for rec in _accepted(count):
        atom, search = rec["atom"], rec["search"]
        key = f"same:{atom}:{search}"
        if key in done:
            continue
        region = region_around(glass, atom, cfg, pot, carve=False)
        full = run_search(SearchTask(atom, search, region, pot, cfg))
        fields = ("status", "barrier", "delta_e", "force_calls", "cpu_s", "region_atoms")
        _write(
            {
                "key": key,
                "atom": atom,
                "search": search,
                "carve": {k: rec.get(k) for k in fields},
                "full": {k: full.get(k) for k in fields},
            }
        )


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
    done = _done()
    args = (glass.get_positions(), glass.cell.array, glass.get_chemical_symbols())
    variants = {
        "carve_8": (8.0, True),
        "carve_12": (12.0, True),
        "full_all_free": (math.inf, False),
    }
    for rec in _accepted(count):
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
    global RUN, OUT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["same-searches", "far-field"])
    parser.add_argument("--count", type=int, default=3, help="accepted events of the run to check")
    parser.add_argument("--run", type=Path, default=RUN, help="validation run folder")
    args = parser.parse_args()
    RUN, OUT = args.run, args.run / "carve_check.jsonl"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.what == "same-searches":
        same_searches(args.count)
    else:
        far_field(args.count)


if __name__ == "__main__":
    main()
