"""put the thermal denoiser in front of a model (barriers during MD)

Write one TorchScript file that moves each input's atoms by --steps steps of --alpha times the
forces of a trained force network (a run folder of training/train_denoiser.py) and predicts
with MODEL on the moved positions. It is used like any model (--model, LAMMPS `compute
symgnn`); an ensemble keeps its per-atom std. The input positions are never changed.
"""

from __future__ import annotations

import argparse


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="exported model file or bundled name")
    p.add_argument("--force-net", required=True, help="run folder of training/train_denoiser.py")
    p.add_argument("-o", "--output", required=True, help="model file to write")
    p.add_argument("--alpha", type=float, default=0.1, help="step per eV/Å of force, Å²/eV")
    p.add_argument("--steps", type=int, default=2, help="denoising steps (default 2)")
    p.add_argument(
        "--max-step", type=float, default=0.3, help="largest move of an atom per step, Å"
    )


def run(args: argparse.Namespace) -> int:
    from ..denoise import export_denoised

    path = export_denoised(
        args.model, args.force_net, args.output, args.alpha, args.steps, args.max_step
    )
    print(
        f"wrote {path} ({args.model} behind {args.steps} denoising step(s), alpha {args.alpha:g})"
    )
    return 0
