"""Per-atom energy barriers of structure files, written as extxyz.

Reads anything :func:`ase.io.read` reads (extxyz, LAMMPS data and dump files,
POSCAR, CIF, ...), every frame of a trajectory, and writes one extxyz file whose
frames carry the prediction as a per-atom array (``energy_barrier`` unless
``--label-name`` says otherwise). One summary line per frame goes to stdout, a
progress bar over frames to stderr (when it is a terminal).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_LABEL", "predict_files"]

DEFAULT_LABEL = "energy_barrier"
_RESERVED = {"numbers", "positions", "species", "pos", "Z", "momenta", "masses"}


def _check_label_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"--label-name must be an identifier (letters, digits, _), got {name!r}")
    if name in _RESERVED:
        raise ValueError(f"--label-name {name!r} is reserved by ASE/extxyz; choose another name")


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def predict_files(
    inputs: list[str],
    output: str,
    model: str | None = None,
    device: str = "cpu",
    label_name: str = DEFAULT_LABEL,
    fmt: str | None = None,
    index: str = ":",
    types: list[str] | None = None,
    progress: bool = True,
    out: Any = None,
) -> int:
    """Predict barriers for every frame of ``inputs`` and write them to ``output``.

    Returns the number of frames written. The output is written to a temporary
    file and moved into place at the end, so a failure leaves no partial file.
    """
    import ase.io
    from tqdm import tqdm

    from .calculator import BARRIERS, SymGNNCalculator
    from .data.io import guess_format, iter_structures

    out = out if out is not None else sys.stdout
    _check_label_name(label_name)
    if not inputs:
        raise ValueError("no input files given")
    out_path = Path(output)
    for path in inputs:
        if not os.path.exists(path):
            raise FileNotFoundError(f"input file not found: {path}")
        if os.path.exists(output) and os.path.samefile(path, output):
            raise ValueError(f"output {output} is also an input; choose another output file")
    if out_path.suffix.lower() not in (".xyz", ".extxyz"):
        logger.info("writing extxyz to %s (whatever its extension)", output)
    calc = SymGNNCalculator(model=model, device=device)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    n_frames = n_atoms = 0
    start_all = time.perf_counter()
    warned_existing = False
    bar = tqdm(
        desc="predict",
        unit="frame",
        file=sys.stderr,
        disable=(not progress) or None,  # None: off when stderr is not a tty
        dynamic_ncols=True,
    )
    try:
        with open(tmp, "w") as fd, bar:
            for path in inputs:
                for k, atoms in iter_structures(path, fmt, index, types):
                    start = time.perf_counter()
                    try:
                        barriers = calc.get_property(BARRIERS, atoms)
                    except ValueError as exc:
                        hint = ""
                        if (fmt or guess_format(path) or "").startswith("lammps") and not types:
                            hint = (
                                " (LAMMPS files carry type numbers: name the element of "
                                "each type with --types, e.g. --types Cu,Zr)"
                            )
                        raise ValueError(f"{path} frame {k}: {exc}{hint}") from None
                    elapsed = time.perf_counter() - start
                    extra = ""
                    if label_name in atoms.arrays:
                        previous = np.asarray(atoms.arrays.pop(label_name), dtype=np.float64)
                        kept = f"{label_name}_input"
                        atoms.arrays[kept] = previous
                        if previous.shape == barriers.shape:
                            extra = f", pearson r vs input {_pearson(barriers, previous):.4f}"
                        if not warned_existing:
                            logger.warning(
                                "%s already has a per-atom `%s`; it is kept as `%s`",
                                path,
                                label_name,
                                kept,
                            )
                            warned_existing = True
                    atoms.arrays[label_name] = barriers
                    ase.io.write(fd, atoms, format="extxyz")
                    bar.update(1)
                    line = (
                        f"{path}[{k}]: {len(atoms)} atoms, barrier mean {barriers.mean():.4f} "
                        f"std {barriers.std():.4f} min {barriers.min():.4f} "
                        f"max {barriers.max():.4f} eV, {elapsed:.3f} s{extra}"
                    )
                    tqdm.write(line, file=out)
                    n_frames += 1
                    n_atoms += len(atoms)
        if n_frames == 0:
            raise ValueError(f"no frames read from {', '.join(inputs)} (index {index!r})")
        os.replace(tmp, out_path)
    finally:
        if tmp.exists():
            tmp.unlink()
    print(
        f"wrote {n_frames} frame(s), {n_atoms} atoms, to {output} "
        f"(`{label_name}`, eV) in {time.perf_counter() - start_all:.2f} s",
        file=out,
    )
    return n_frames
