"""Forward time of exported model files head to head: the files are timed alternately in one
process (the order rotates every round), so a busy machine slows them alike.

    python benchmarks/compare_files.py A.pt B.pt [C.pt ...] [--repeat 7] [--threads 1]

Prints each file's median forward time on the structure (default: the 8000-atom glass
``train0.extxyz``; graph of the first file's r_max, built once), its ratio to the first
file, and whether its barriers are bit-identical to the first file's. For a code change that must not change speed or numbers: export the same
weights once with the code before and once with the code after, and compare the two files.
Times are process CPU time (``time.process_time``): with one thread, the wall time on an idle
core.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import ase.io
import torch

from symgnn_ase.data.graph import graph_from_atoms
from symgnn_ase.export import load_model

ROOT = Path(__file__).resolve().parents[1]
GLASS = ROOT.parent / "shared" / "data" / "cuzr64" / "train0.extxyz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="exported model files (at least 2)")
    parser.add_argument("--structure", default=str(GLASS))
    parser.add_argument("--repeat", type=int, default=7, help="forwards per file (default 7)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if len(args.files) < 2:
        raise SystemExit("give at least two model files")
    torch.set_num_threads(args.threads)
    atoms = ase.io.read(args.structure)  # any structure file ase reads
    models = [load_model(f) for f in args.files]
    first = models[0]
    g = graph_from_atoms(atoms, first.r_max, first.type_names)
    edge_vec = g.edge_vec.to(first.dtype)
    times: list[list[float]] = [[] for _ in models]
    with torch.no_grad():
        outputs = [m.module(g.species, g.edge_index, edge_vec) for m in models]  # warm-up
        for r in range(args.repeat):
            order = list(range(len(models)))
            order = order[r % len(order) :] + order[: r % len(order)]
            for k in order:
                t = time.process_time()
                models[k].module(g.species, g.edge_index, edge_vec)
                times[k].append(time.process_time() - t)
    print(f"{len(atoms)} atoms, {g.edge_index.shape[1]} edges, {args.threads} thread(s)")
    base = statistics.median(times[0])
    for path, t, y in zip(args.files, times, outputs, strict=True):
        med = statistics.median(t)
        same = torch.equal(y, outputs[0])
        print(f"{path}: {med:.3f} s (min {min(t):.3f}), x{med / base:.3f}, identical: {same}")


if __name__ == "__main__":
    main()
