"""Validation of `symgnn label` against the dataset's barriers (docs/labels.md).

    .venv/bin/python benchmarks/labels/validate.py run [--workers 2]   # resumable: run again
    .venv/bin/python benchmarks/labels/validate.py report               # numbers so far

``run`` is ``symgnn label ../shared/data/cuzr64/valid.extxyz --potential CuZr_mm.eam.fs
--atoms random:30 --searches 10 -o benchmarks/labels/valid`` (the default protocol);
``report`` compares the per-atom means of the accepted events with the dataset's
``energy_barrier`` (Pearson, mean offset) and sums the cost from the records, into
``benchmarks/labels/valid/validation.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
GLASS = ROOT.parent / "shared" / "data" / "cuzr64" / "valid.extxyz"
OUT = Path(__file__).resolve().parent / "valid"
ATOMS = "random:30"
SEARCHES = 10


def run(workers: int) -> None:
    from symgnn_ase.label import LabelConfig, label_glass

    label_glass(
        GLASS,
        "CuZr_mm.eam.fs",
        OUT,
        atoms=ATOMS,
        config=LabelConfig(searches=SEARCHES),
        workers=workers,
    )


def report() -> dict:
    import ase.io

    labels = ase.io.read(GLASS).arrays["energy_barrier"]
    records = [json.loads(line) for line in (OUT / "searches.jsonl").read_text().splitlines()]
    per_atom: dict[int, list[float]] = {}
    status: dict[str, int] = {}
    for r in records:
        status[r["status"]] = status.get(r["status"], 0) + 1
        if r["status"] == "accepted":
            per_atom.setdefault(r["atom"], []).append(r["barrier"])
    full = sorted(a for a, b in per_atom.items() if len(b) >= SEARCHES)
    out: dict = {
        "searches": len(records),
        "status": status,
        "force_calls_per_search": float(np.mean([r["force_calls"] for r in records])),
        "cpu_s_per_search": float(np.mean([r["cpu_s"] for r in records])),
        "cpu_s_total": float(np.sum([r["cpu_s"] for r in records])),
        "atoms_with_events": len(per_atom),
        "atoms_complete": len(full),
    }
    for name, atoms in (("complete", full), ("any", sorted(per_atom))):
        if len(atoms) >= 3:
            ours = np.array([np.mean(per_atom[a]) for a in atoms])
            theirs = labels[atoms]
            out[name] = {
                "atoms": len(atoms),
                "pearson": float(np.corrcoef(ours, theirs)[0, 1]),
                "mean_ours": float(ours.mean()),
                "mean_dataset": float(theirs.mean()),
                "mean_offset": float((ours - theirs).mean()),
            }
    (OUT / "validation.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["run", "report"])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.what == "run":
        run(args.workers)
    print(json.dumps(report(), indent=2))


if __name__ == "__main__":
    main()
