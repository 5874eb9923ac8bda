"""Cost of an ensemble of K models against one model, side by side, on an 8000-atom glass.

    python benchmarks/ensemble.py [--ensemble training/runs/ensemble_length/ensemble.pt]
                                  [--single symgnn_length] [--repeat 3] [--threads 2] [--lammps]
                                  [--cpu-time] [--json FILE]

Times (median of --repeat after a warm-up), single model vs the ensemble file, graph built once:

* ``forward``: the calculator's call (single: ``forward``; ensemble: ``forward_std``, every
  member's forward one after the other, then mean and std);
* ``layered``: what the LAMMPS compute runs (``embed``, ``interact`` per layer, ``readout`` /
  ``readout_std``), on the ensemble's concatenated node and edge states;
* with ``--lammps``: ``compute symgnn`` in the real ``lmp`` on 1 and 2 MPI ranks (1 thread
  each), single model vs ensemble with ``std yes``: the Output time of LAMMPS's timing
  breakdown over --lammps-evals evaluations (thermo invokes the compute), per evaluation.

``--cpu-time`` (for a machine shared with other jobs, where wall times say more about the
neighbours than about the code): torch runs 1 thread and the Python paths are timed in process
CPU time; the LAMMPS rows are the CPU seconds of all ranks (their resource usage) of a run with
--lammps-evals evaluations minus those of a run with none, per evaluation.

Ratios ensemble / single are printed; K is the ideal (members run one after the other).
``--json FILE`` also writes the rows (MODEL_CARD's Table 1 takes the ensemble's forward time from
``training/results/ensemble_cost.json``, written with ``--cpu-time`` on ``train0.extxyz`` like
the single models' times in ``training/results/inference.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
GLASS = ROOT.parent / "shared" / "data" / "cuzr64" / "valid.extxyz"
BIN = Path(sys.executable).parent


CLOCK = time.perf_counter  # --cpu-time: time.process_time


def _timeit(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = CLOCK()
        fn()
        times.append(CLOCK() - t)
    return statistics.median(times)


def _layered(model, g, std: bool):
    m = model.module
    h, e = m.embed(g.species, g.edge_index, g.edge_vec)
    for layer in range(model.n_layers):
        h, e = m.interact(layer, h, e, g.edge_index)
    return m.readout_std(h) if std else m.readout(h)


def _children_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def _lammps(model: str, std: bool, atoms, nprocs: int, evals: int, cpu: bool) -> float:
    """Seconds per evaluation of compute symgnn: LAMMPS's 'Output' time / evaluations, or with
    ``cpu`` the CPU seconds of all ranks with ``evals`` evaluations minus those without."""
    if cpu:
        base = _lammps_run(model, std, atoms, nprocs, 0)[1]
        total = _lammps_run(model, std, atoms, nprocs, evals)[1]
        return (total - base) / evals
    return _lammps_run(model, std, atoms, nprocs, evals)[0]


def _lammps_run(model: str, std: bool, atoms, nprocs: int, evals: int) -> tuple[float, float]:
    """(Output seconds per evaluation, CPU seconds of the whole run)."""
    import ase.io

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ase.io.write(tmp / "glass.data", atoms, format="lammps-data", specorder=["Cu", "Zr"])
        text = f"""units metal
atom_style atomic
read_data glass.data
pair_style zero 5.0
pair_coeff * *
mass 1 63.546
mass 2 91.224
compute b all symgnn {model} Cu Zr{" std yes" if std else ""}
compute r all reduce ave {"c_b[1]" if std else "c_b"}
thermo_style custom step c_r
thermo 1
run 0
{f"run {evals - 1}" if evals > 0 else ""}
"""
        (tmp / "in.bench").write_text(text)
        cmd = [str(BIN / "lmp"), "-in", "in.bench", "-log", "log.lammps", "-nocite"]
        if nprocs > 1:
            cmd = [str(BIN / "mpirun"), "-np", str(nprocs), *cmd]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        env.pop("SYMGNN_LAMMPS_DEBUG", None)
        before = _children_cpu()
        out = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, check=False)
        cpu = _children_cpu() - before
        if out.returncode:
            raise RuntimeError(out.stdout[-2000:] + out.stderr[-2000:])
        if evals < 2:
            return float("nan"), cpu
        # the timing breakdown of the last run: "Output  | min | avg | max | %varavg | %total"
        rows = re.findall(r"^Output\s*\|\s*([\d.eE+-]+)\s*\|\s*([\d.eE+-]+)", out.stdout, re.M)
        return float(rows[-1][1]) / evals, cpu  # thermo at steps 0..evals-1 of the last run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--ensemble", default=str(ROOT / "training" / "runs" / "ensemble_length" / "ensemble.pt")
    )
    parser.add_argument("--single", default="symgnn_length", help="model file or bundled name")
    parser.add_argument("--structure", default=str(GLASS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lammps", action="store_true", help="also time compute symgnn in lmp")
    parser.add_argument("--lammps-evals", type=int, default=3)
    parser.add_argument(
        "--cpu-time", action="store_true", help="CPU time instead of wall time (1 torch thread)"
    )
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()
    global CLOCK
    if args.cpu_time:
        CLOCK = time.process_time
        args.threads = 1
    torch.set_num_threads(args.threads)

    import ase.io

    from symgnn_ase.data.graph import graph_from_atoms
    from symgnn_ase.export import load_model
    from symgnn_ase.format import resolve_model_path

    if Path(args.structure).exists():
        atoms = ase.io.read(args.structure)
    else:
        from symgnn_ase.testing import random_glass

        print(f"{args.structure} not found: using a random 8000-atom glass")
        atoms = random_glass(8000, seed=0)
    single = load_model(args.single)
    ens = load_model(args.ensemble)
    assert ens.is_ensemble, f"{args.ensemble} is not an ensemble file"
    k = ens.ensemble_size
    # a smoothed ensemble (`symgnn smooth`) costs more than its K members: no ideal ratio
    wrappers = {"smoothed": " + smoothing"}
    what, info = f"ensemble of {k}", ens.info
    extras = []
    while info.get("kind") in wrappers:
        extras.insert(0, wrappers[info["kind"]])
        info = info.get("base", {}).get("info", {})
    what += "".join(extras)
    ideal = "" if extras else f" (ideal {k})"
    g = graph_from_atoms(atoms, ens.r_max, ens.type_names, ens.dtype)
    print(
        f"structure: {len(atoms)} atoms, {g.edge_index.shape[1]} edges; torch threads "
        f"{torch.get_num_threads()}; single {Path(single.path).name}, {what} "
        f"({Path(ens.path).name}, feature_dim {ens.feature_dim})"
    )
    rows = []
    with torch.inference_mode():
        for name, fn_single, fn_ens in [
            (
                "forward (calculator)",
                lambda: single.module(g.species, g.edge_index, g.edge_vec),
                lambda: ens.module.forward_std(g.species, g.edge_index, g.edge_vec),
            ),
            (
                "layered (LAMMPS path)",
                lambda: _layered(single, g, False),
                lambda: _layered(ens, g, True),
            ),
        ]:
            t1 = _timeit(fn_single, args.repeat)
            tk = _timeit(fn_ens, args.repeat)
            rows.append((name, t1, tk))
    if args.lammps:
        single_path = str(resolve_model_path(args.single))
        for nprocs in (1, 2):
            t1 = _lammps(single_path, False, atoms, nprocs, args.lammps_evals, args.cpu_time)
            tk = _lammps(str(ens.path), True, atoms, nprocs, args.lammps_evals, args.cpu_time)
            rows.append((f"compute symgnn, {nprocs} rank(s) x 1 thread", t1, tk))
    print()
    clock = "CPU seconds (all threads and ranks)" if args.cpu_time else "wall seconds"
    print(f"{clock}, median of {args.repeat}; LAMMPS: per evaluation of the compute")
    print(f"| path | single (s) | {what} (s) | ratio{ideal} |")
    print("| --- | --- | --- | --- |")
    for name, t1, tk in rows:
        print(f"| {name} | {t1:.3f} | {tk:.3f} | {tk / t1:.2f} |")
    # the numbers are the members' own: same mean as running them one by one
    with torch.inference_mode():
        each = ens.module.forward_members(g.species, g.edge_index, g.edge_vec)
        both = ens.module.forward_std(g.species, g.edge_index, g.edge_vec)
    assert np.allclose(both[0].numpy(), each.mean(0).numpy())
    if args.json:
        from symgnn_ase.outputs import write_text

        record = {
            "note": (
                f"{len(atoms)} atoms ({Path(args.structure).name}), {g.edge_index.shape[1]} "
                f"edges, torch threads {torch.get_num_threads()}, median of {args.repeat}, "
                + ("CPU time" if args.cpu_time else "wall time")
            ),
            "ensemble": str(args.ensemble),
            "ensemble_size": k,
            "single": str(args.single),
            "rows": [
                {"path": name, "single_s": t1, "ensemble_s": tk, "ratio": tk / t1}
                for name, t1, tk in rows
            ],
        }
        write_text(args.json, json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
