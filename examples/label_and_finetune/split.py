"""Split the labelled atoms of barriers.extxyz into a training and a validation copy.

    python split.py labels/barriers.extxyz train.extxyz valid.extxyz [--valid-fraction 0.25]

At least 3 atoms go to validation (its score is a Pearson correlation). Both copies hold
every atom (the model needs each atom's neighbours); an atom's label is kept in one copy and
set to NaN (unlabelled) in the other. `symgnn train` with `data.partial_labels: true` leaves
NaN labels out of the loss and the metrics.
"""

from __future__ import annotations

import argparse

import ase.io
import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labels")
    parser.add_argument("train")
    parser.add_argument("valid")
    parser.add_argument("--valid-fraction", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    atoms = ase.io.read(args.labels)
    barrier = atoms.arrays["energy_barrier"]
    labelled = np.flatnonzero(np.isfinite(barrier))
    if labelled.size < 4:
        raise SystemExit(
            f"{args.labels}: {labelled.size} labelled atom(s); need 4 or more (label more atoms)"
        )
    rng = np.random.default_rng(args.seed)
    # at least 3 validation atoms: the validation score is a Pearson correlation
    n_valid = min(max(3, round(args.valid_fraction * labelled.size)), labelled.size - 1)
    valid = rng.choice(labelled, size=n_valid, replace=False)
    train = np.setdiff1d(labelled, valid)
    for path, keep in ((args.train, train), (args.valid, valid)):
        copy = atoms.copy()
        label = np.full(len(atoms), np.nan)
        label[keep] = barrier[keep]
        copy.arrays["energy_barrier"] = label
        ase.io.write(path, copy)
        print(f"{path}: {keep.size} labelled atoms of {len(atoms)}")


if __name__ == "__main__":
    main()
