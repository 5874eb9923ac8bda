"""Neighbor-list throughput: symgnn against vesin, matscipy, ASE (and torch-cluster).

The CuZr glass ``train0.extxyz`` (8000 atoms) is replicated 1^3 ... 4^3 times
(8 k -> 512 k atoms) and a full directed list at 5 Å is built. Every method runs
in this one process, interleaved, best of ``--repeat`` runs; the table gives
directed pairs per second (wall clock) and the ratio to vesin on one thread.

    python benchmarks/neighbors.py [--sizes 1 2 3 4] [--repeat 5]

Without ``../shared`` a random structure at the glass's density is used.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cuzr64" / "train0.extxyz"
CUTOFF = 5.0


def base_structure():
    import ase
    import ase.io

    if DATA.exists():
        return ase.io.read(DATA, index=0), f"{DATA.name} (Cu64Zr36 glass, 8000 atoms)"
    rng = np.random.default_rng(0)
    box = 50.23  # the glass's density: 8000 atoms in (50.23 Å)^3
    atoms = ase.Atoms(
        "Cu5120Zr2880", positions=rng.uniform(0, box, (8000, 3)), cell=[box] * 3, pbc=True
    )
    return atoms, "random positions at the glass density (../shared absent), 8000 atoms"


def methods(n_atoms: int) -> dict[str, Callable]:
    from symgnn_ase import neighbors

    out: dict[str, Callable] = {
        "symgnn (default threads)": lambda p, c: neighbors(p, c, True, CUTOFF),
        "symgnn (1 thread)": lambda p, c: neighbors(p, c, True, CUTOFF, n_threads=1),
    }
    try:
        import vesin

        nl1 = vesin.NeighborList(cutoff=CUTOFF, full_list=True, n_threads=1)
        nlt = vesin.NeighborList(cutoff=CUTOFF, full_list=True)
        out["vesin (1 thread)"] = lambda p, c: nl1.compute(p, c, True, "ijSD", copy=False)
        out["vesin (default threads)"] = lambda p, c: nlt.compute(p, c, True, "ijSD", copy=False)
    except ImportError:
        print("vesin is not installed (pip install vesin): skipped")
    try:
        import ase
        from matscipy.neighbours import neighbour_list

        def matscipy_nl(p, c):
            atoms = ase.Atoms(positions=p, cell=c, pbc=True, numbers=np.ones(len(p), int))
            return neighbour_list("ijSD", atoms, CUTOFF)

        out["matscipy"] = matscipy_nl
    except ImportError:
        print("matscipy is not installed (pip install matscipy): skipped")
    if n_atoms <= 8000:
        import ase
        from ase.neighborlist import neighbor_list

        def ase_nl(p, c):
            atoms = ase.Atoms(positions=p, cell=c, pbc=True, numbers=np.ones(len(p), int))
            return neighbor_list("ijSD", atoms, CUTOFF)

        out["ASE"] = ase_nl
    try:
        import torch
        from torch_cluster import radius_graph

        def tc(p, c):  # no periodic boundaries: fewer pairs, not the same problem
            return radius_graph(torch.from_numpy(p), CUTOFF, max_num_neighbors=10**6)

        out["torch_cluster.radius_graph (no PBC)"] = tc
    except ImportError:
        pass
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    atoms, source = base_structure()
    print(f"structure: {source}; cutoff {CUTOFF} Å; full directed lists with i, j, S, D")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    rows = []
    for rep in args.sizes:
        big = atoms.repeat(rep)
        pos = np.ascontiguousarray(big.positions)
        cell = np.ascontiguousarray(big.cell.array)
        funcs = methods(len(big))
        best = dict.fromkeys(funcs, float("inf"))
        pairs: dict[str, int] = {}
        repeat = args.repeat if len(big) <= 64000 else max(2, args.repeat // 2)
        for r in range(repeat + 1):  # first round is a warm-up
            for name, fn in funcs.items():
                if name == "ASE" and r > 1:
                    continue
                gc.collect()
                t0 = time.perf_counter()
                res = fn(pos, cell)
                dt = time.perf_counter() - t0
                pairs[name] = len(res[0]) if not hasattr(res, "shape") else res.shape[1]
                del res
                if r > 0 or name == "ASE":
                    best[name] = min(best[name], dt)
        ref_name = "vesin (1 thread)"
        ref = pairs.get(ref_name, 0) / best[ref_name] if ref_name in best else float("nan")
        print(f"\n{len(big)} atoms ({rep}^3 replicas), {pairs['symgnn (1 thread)']} pairs")
        print(f"  {'method':40s} {'time (s)':>10s} {'Mpairs/s':>10s} {'vs vesin 1t':>12s}")
        for name in funcs:
            rate = pairs[name] / best[name]
            note = "" if pairs[name] == pairs["symgnn (1 thread)"] else f"  ({pairs[name]} pairs)"
            print(f"  {name:40s} {best[name]:10.4f} {rate / 1e6:10.2f} {rate / ref:11.2f}x{note}")
            rows.append((len(big), name, best[name], rate, rate / ref))
    print("\nsummary (ratio to vesin 1 thread):")
    for n_atoms in sorted({r[0] for r in rows}):
        line = ", ".join(
            f"{r[1]} {r[4]:.2f}x" for r in rows if r[0] == n_atoms and "symgnn" in r[1]
        )
        print(f"  {n_atoms:7d} atoms: {line}")


if __name__ == "__main__":
    main()
