"""Export the shallow-ensemble default: calibrated spread and the relax protocol in the file.

    .venv/bin/python training/make_default_shallow.py --run training/runs/default_shallow_readout \\
        --out training/runs/default_shallow/default.pt

1. The run's best.pt exported as an ensemble file (``train.export.export_run``; std_scale 1).
2. std_scale fitted on the validation frames moved by the relax protocol (the validation glass
   and its 300 K and 600 K snapshots, training/data/relaxed4, all atoms pooled) so that the mean
   of z^2 = ((mean - label) / std)^2 is 1: std_scale = sqrt(mean z^2 at scale 1).
3. Exported again with that std_scale, then the ``relax`` metadata written
   (``potential.relax.write_relax_metadata``): K = 4, alpha 0.12 A^2/eV, cap 0.3 A,
   CuZr_mm.eam.fs (eam/fs), the protocol the training frames were moved with.
4. Checks: the file loads as an ensemble with that protocol, and the ASE calculator on the
   unmoved validation glass (relaxing with the potential the file names) gives the mean and
   std of the model on the moved frame of training/data/relaxed4 within 1e-5 eV.

Writes ``OUT_calibration.json`` next to ``--out`` (OUT its stem). ``--steps 2 --moved DIR``
with DIR from ``make_relaxed_frames.py --steps 2 --out DIR --only valid valid_T300 valid_T600``
gives the same network stamped and calibrated for K = 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training"))
from eval_relax_protocol import DATA, RELAXED4, SETS, frames, predict  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--alpha", type=float, default=0.12)
    p.add_argument("--cap", type=float, default=0.3)
    p.add_argument(
        "--moved",
        type=Path,
        default=RELAXED4,
        help="validation frames moved by this protocol (make_relaxed_frames.py --out)",
    )
    args = p.parse_args(argv)
    import ase.io
    import torch

    from symgnn_ase.calculator import BARRIER_STD, BARRIERS, SymGNNCalculator
    from symgnn_ase.export import load_model
    from symgnn_ase.outputs import write_text
    from symgnn_ase.potential.relax import RelaxProtocol, read_relax_metadata, write_relax_metadata
    from symgnn_ase.train.export import export_run

    torch.set_num_threads(1)
    protocol = RelaxProtocol(args.steps, args.alpha, args.cap, "CuZr_mm.eam.fs", "eam/fs")
    with tempfile.TemporaryDirectory() as tmp:
        raw = export_run(args.run, Path(tmp) / "raw.pt", std_scale=1.0)
        loaded = load_model(raw)
        z2, per_set = [], {}
        for name in SETS:
            err, std = [], []
            for atoms in frames("protocol", name, Path(tmp), args.moved):
                mu, s = predict(loaded, atoms)
                err.append(mu - atoms.arrays["energy_barrier"])
                std.append(s)
            z = np.concatenate(err) / np.concatenate(std)
            z2.append(z * z)
            per_set[name] = {"mean_z2_raw": float(np.mean(z * z)), "atoms": int(z.size)}
        z2_all = np.concatenate(z2)
        scale = float(np.sqrt(np.mean(z2_all)))
        for row in per_set.values():
            row["mean_z2_calibrated"] = row["mean_z2_raw"] / scale**2
        scaled = export_run(args.run, Path(tmp) / "scaled.pt", std_scale=scale)
        write_relax_metadata(scaled, args.out, protocol)
    final = load_model(args.out)
    got = read_relax_metadata(final)
    scale = float(final.info["std_scale"])  # as the file holds it (a float32 buffer)
    if not final.is_ensemble or got != protocol or abs(scale / np.sqrt(np.mean(z2_all)) - 1) > 1e-6:
        raise ValueError(f"{args.out}: wrote {got} / std_scale {final.info.get('std_scale')}")
    # end to end: the calculator moves the user's (unmoved) glass itself
    atoms = ase.io.read(DATA / "valid.extxyz")
    calc = SymGNNCalculator(str(args.out))
    calc.calculate(atoms)
    moved = ase.io.read(args.moved / "valid.extxyz.gz")
    mu, s = predict(final, moved)
    d_mean = float(np.abs(calc.results[BARRIERS] - mu).max())
    d_std = float(np.abs(calc.results[BARRIER_STD] - s).max())
    if max(d_mean, d_std) > 1e-5:
        raise ValueError(f"calculator vs moved frame: mean {d_mean:.2e}, std {d_std:.2e} eV")
    result = {
        "model": str(args.out),
        "run": str(args.run),
        "relax": json.loads(protocol.to_json()),
        "std_scale": scale,
        "rule": "std_scale = sqrt(mean z^2), z = (mean - label) / std at std_scale 1, all atoms "
        "of the moved validation frames (relaxed glass, 300 K x2, 600 K x2) pooled",
        "per_set": per_set,
        "calculator_vs_moved_frame_max_abs_eV": {"mean": d_mean, "std": d_std},
    }
    out_json = args.out.with_name(args.out.stem + "_calibration.json")
    write_text(out_json, json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
