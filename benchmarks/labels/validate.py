"""Validation of `symgnn label` against the dataset's barriers (docs/labels.md).

    .venv/bin/python benchmarks/labels/validate.py run [--workers 2]   # resumable: run again
    .venv/bin/python benchmarks/labels/validate.py report               # numbers so far
    # a small version (4 atoms, 3 events each), which the full run continues:
    .venv/bin/python benchmarks/labels/validate.py run --first 4 --searches 3 --max-attempts 40 \\
        --workers 1

``run`` is ``symgnn label ../shared/data/cuzr64/train0.extxyz --potential CuZr_mm.eam.fs
--atoms random:30 --searches 10 --max-attempts 150 -o benchmarks/labels/train0`` (the default
protocol; about a quarter of the searches are accepted, so 10 events need about 40), all
atoms at once (``--chunk`` sets how many at a time).
Killed? Run the same line again: finished searches are skipped (records in
``OUT/searches.jsonl``). ``report`` compares the per-atom means of the accepted events with
the dataset's ``energy_barrier`` (Pearson, mean offset, for the atoms with all ``--searches``
events and for every atom with one or more) and sums the cost from the records (force calls
and CPU seconds per search and per accepted event), into ``OUT/validation.json``.

The default glass is train0, not valid.extxyz: minimizing valid.extxyz with CuZr_mm.eam.fs
moves its atoms 0.39 Å RMS (the training glasses 0.19-0.27 Å,
training/data/thermal/manifest.json), so the relaxed validation glass is further from the
structure the dataset's barriers were computed on. ``--glass valid`` labels valid.extxyz.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1].parent / "shared" / "data" / "cuzr64"
POTENTIAL = "CuZr_mm.eam.fs"


def glass_path(name: str) -> Path:
    path = Path(name)
    return path if path.suffix else DATA / f"{name}.extxyz"


def run(
    glass: Path,
    out: Path,
    atoms: str,
    searches: int,
    attempts: int,
    workers: int,
    chunk: int,
    first: int | None,
) -> None:
    """All of ``atoms`` (the ``first`` of them only, if given), ``chunk`` atoms at a time (so
    that a partial run has finished atoms)."""
    import ase.io

    from symgnn_ase.label import LabelConfig, label_glass
    from symgnn_ase.label.selection import parse_selection

    cfg = LabelConfig(searches=searches, max_attempts=attempts)
    structure = ase.io.read(glass)
    chosen = parse_selection(atoms, len(structure), cfg.seed, structure.get_chemical_symbols())
    chosen = chosen[:first] if first is not None else chosen
    for start in range(0, chosen.size, chunk):
        part = ",".join(str(a) for a in chosen[start : start + chunk])
        label_glass(glass, POTENTIAL, out, atoms=part, config=cfg, workers=workers)


def _agreement(per_atom: dict[int, list[float]], chosen: list[int], labels) -> dict:
    """Pearson (with a seeded bootstrap 95 % interval over atoms), Spearman and the mean offset
    of the per-atom mean barriers of ``chosen`` against the dataset's labels."""
    ours = np.array([np.mean(per_atom[a]) for a in chosen])
    theirs = np.asarray(labels)[chosen]
    rng = np.random.default_rng(0)
    boot = []
    for _ in range(2000):
        k = rng.integers(0, len(chosen), len(chosen))
        if np.ptp(ours[k]) > 0 and np.ptp(theirs[k]) > 0:
            boot.append(np.corrcoef(ours[k], theirs[k])[0, 1])
    rank = np.argsort(np.argsort(ours)), np.argsort(np.argsort(theirs))
    return {
        "atoms": len(chosen),
        "pearson": float(np.corrcoef(ours, theirs)[0, 1]),
        "pearson_95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
        "spearman": float(np.corrcoef(*rank)[0, 1]),
        "mean_ours": float(ours.mean()),
        "mean_dataset": float(theirs.mean()),
        "mean_offset": float((ours - theirs).mean()),
    }


def report(glass: Path, out: Path, searches: int, max_attempts: int | None = None) -> dict:
    import ase.io

    from symgnn_ase.outputs import write_text

    labels = ase.io.read(glass).arrays["energy_barrier"]
    records = [json.loads(line) for line in (out / "searches.jsonl").read_text().splitlines()]
    per_atom: dict[int, list[float]] = {}
    status: dict[str, int] = {}
    attempts: dict[int, int] = {}
    for r in records:
        status[r["status"]] = status.get(r["status"], 0) + 1
        attempts[r["atom"]] = attempts.get(r["atom"], 0) + 1
        if r["status"] == "accepted":
            per_atom.setdefault(r["atom"], []).append(r["barrier"])
    accepted = [r for r in records if r["status"] == "accepted"]
    full = sorted(a for a, b in per_atom.items() if len(b) >= searches)
    cpu = float(np.sum([r["cpu_s"] for r in records]))
    calls = float(np.sum([r["force_calls"] for r in records]))
    result: dict = {
        "glass": glass.name,
        "searches": len(records),
        "status": dict(sorted(status.items())),
        "acceptance": len(accepted) / max(len(records), 1),
        "force_calls_per_search": calls / max(len(records), 1),
        "cpu_s_per_search": cpu / max(len(records), 1),
        "cpu_s_per_accepted": cpu / max(len(accepted), 1),
        "cpu_s_total": cpu,
        "event_barrier_mean": float(np.mean([r["barrier"] for r in accepted]))
        if accepted
        else None,
        "event_barrier_std": float(np.std([r["barrier"] for r in accepted])) if accepted else None,
        "atoms_with_events": len(per_atom),
        "atoms_complete": len(full),
        "searches_wanted_per_atom": searches,
    }
    for name, chosen in (("complete", full), ("any", sorted(per_atom))):
        if len(chosen) >= 3:
            result[name] = _agreement(per_atom, chosen, labels) | {
                "per_atom": {  # atom: [our mean, the dataset's label, accepted events]
                    str(a): [
                        round(float(np.mean(per_atom[a])), 4),
                        round(float(labels[a]), 4),
                        len(per_atom[a]),
                    ]
                    for a in chosen
                },
            }
    if max_attempts is not None:
        result["max_attempts"] = max_attempts
        result["atoms_at_max_attempts"] = sorted(
            a
            for a, n in attempts.items()
            if n >= max_attempts and len(per_atom.get(a, [])) < searches
        )
    result["by_min_events"] = {
        str(k): _agreement(per_atom, chosen, labels)
        for k in (1, 3, 5, 10)
        if len(chosen := sorted(a for a, b in per_atom.items() if len(b) >= k)) >= 3
    }
    write_text(out / "validation.json", json.dumps(result, indent=2) + "\n")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["run", "report"])
    parser.add_argument("--glass", default="train0", help="dataset glass name or a file")
    parser.add_argument("--out", type=Path, default=None, help="default benchmarks/labels/GLASS")
    parser.add_argument("--atoms", default="random:30")
    parser.add_argument("--searches", type=int, default=10, help="accepted events per atom")
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=150,
        help="searches per atom at most (about a quarter are accepted, docs/labels.md)",
    )
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--chunk", type=int, default=30, help="atoms labelled at a time")
    parser.add_argument(
        "--first",
        type=int,
        default=None,
        help="label only the first N atoms of --atoms (a small run that the full one continues)",
    )
    args = parser.parse_args()
    glass = glass_path(args.glass)
    out = args.out or HERE / glass.stem
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.what == "run":
        run(
            glass,
            out,
            args.atoms,
            args.searches,
            args.max_attempts,
            args.workers,
            args.chunk,
            args.first,
        )
    print(json.dumps(report(glass, out, args.searches, args.max_attempts), indent=2))


if __name__ == "__main__":
    main()
