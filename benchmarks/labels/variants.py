"""Protocol variants of `symgnn label`, on the first atoms of the validation run (docs/labels.md).

    .venv/bin/python benchmarks/labels/variants.py NAME --atoms 21,131,268,326 --searches 3 \\
        --set basin_max_steps=25 --set activation_perp_first=1

runs searches 0 .. N-1 of each atom with the default protocol changed by ``--set`` (the same
seeds as ``benchmarks/labels/train0``, so a search's push is the same as there up to where the
variant differs), from ``benchmarks/labels/train0/relaxed.extxyz``, in this process, and appends
the records to ``benchmarks/labels/variants/NAME.jsonl``; it prints each search and the counts
of each status. Searches already in the file are skipped.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1].parent / "shared" / "data" / "cuzr64"


def main() -> None:
    import ase.io
    import yaml

    from symgnn_ase.label.artn import SearchTask, run_search
    from symgnn_ase.label.carve import region_around
    from symgnn_ase.label.config import LabelConfig
    from symgnn_ase.potential.eam import load_potential

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("--atoms", default="21,131,268,326")
    parser.add_argument("--searches", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    values = {}
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        values[key.strip()] = yaml.safe_load(text)
    cfg = LabelConfig.from_mapping(values)
    pot = load_potential("CuZr_mm.eam.fs")
    glass = ase.io.read(HERE / "train0" / "relaxed.extxyz")
    labels = ase.io.read(DATA / "train0.extxyz").arrays["energy_barrier"]
    out = HERE / "variants" / f"{args.name}.jsonl"
    out.parent.mkdir(exist_ok=True)
    done = set()
    if out.exists():
        done = {(r["atom"], r["search"]) for r in map(json.loads, out.read_text().splitlines())}
    counts: collections.Counter[str] = collections.Counter()
    for atom in (int(a) for a in args.atoms.split(",")):
        region = region_around(glass, atom, cfg, pot)
        for search in range(args.searches):
            if (atom, search) in done:
                continue
            record = run_search(SearchTask(atom, search, region, pot, cfg))
            record["variant"] = args.set
            with out.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            counts[record["status"]] += 1
            print(
                atom,
                search,
                record["status"],
                record["reason"][:70],
                f"pushes {record.get('basin_steps')}",
                f"barrier {record.get('barrier', float('nan')):.3f}",
                f"label {labels[atom]:.3f}",
                f"{record['cpu_s']} CPU-s",
                flush=True,
            )
    print(args.name, dict(counts))


if __name__ == "__main__":
    main()
