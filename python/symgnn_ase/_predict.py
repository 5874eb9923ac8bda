"""``symgnn predict``: per-atom energy barriers of structure files, written as extxyz.

Reads anything :func:`ase.io.read` reads (extxyz, LAMMPS data and dump files,
POSCAR, CIF, ...), every frame of a trajectory, and writes one extxyz file whose
frames carry the prediction as a per-atom array (``energy_barrier`` unless
``--label-name`` says otherwise). One summary line per frame goes to stdout, a
progress bar over frames to stderr (when it is a terminal).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["register", "run", "predict_files", "guess_format", "parse_types"]

DEFAULT_LABEL = "energy_barrier"
_RESERVED = {"numbers", "positions", "species", "pos", "Z", "momenta", "masses"}
_LAMMPS_DATA_SUFFIXES = (".data", ".lmp", ".lammps", ".lammpsdata")
_LAMMPS_DUMP_SUFFIXES = (".lammpstrj", ".dump", ".lammpsdump")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="per-atom energy barriers of structure files, written as extxyz",
        description=(
            "Predict every atom's energy barrier (eV) in each frame of the INPUT files "
            "(any format ase.io.read reads) and write all frames to OUTPUT (extxyz)."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="structure files")
    parser.add_argument(
        "-o", "--output", required=True, metavar="OUTPUT", help="extxyz file to write"
    )
    parser.add_argument(
        "--model",
        default=None,
        help="exported model file or bundled model name (default: the bundled CuZr model)",
    )
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument(
        "--label-name",
        default=DEFAULT_LABEL,
        help=f"name of the per-atom output array (default: {DEFAULT_LABEL})",
    )
    parser.add_argument(
        "--format",
        default=None,
        help="ase.io format of the inputs, e.g. extxyz, lammps-data, lammps-dump-text, "
        "vasp, cif (default: guessed from each file name and content)",
    )
    parser.add_argument(
        "--index",
        default=":",
        help="frames to read from each input, in ase.io syntax (default ':' = all; '-1' = last)",
    )
    parser.add_argument(
        "--types",
        default=None,
        metavar="ELEMENTS",
        help="elements of LAMMPS atom types 1, 2, ..., comma separated, e.g. Cu,Zr (LAMMPS "
        "data/dump files carry type numbers; like `pair_coeff * * Cu Zr`)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (also off when not a tty)"
    )
    parser.set_defaults(func=run)


def guess_format(path: str | os.PathLike[str]) -> str | None:
    """LAMMPS formats from the file name (ASE mistakes ``*.data`` for another format), else None."""
    name = Path(path).name.lower()
    if name.endswith(_LAMMPS_DATA_SUFFIXES) or name.startswith("data."):
        return "lammps-data"
    if name.endswith(_LAMMPS_DUMP_SUFFIXES) or name.startswith("dump."):
        return "lammps-dump-text"
    return None


def parse_types(text: str | None) -> list[str] | None:
    """``"Cu,Zr"`` or ``"Cu Zr"`` -> ``["Cu", "Zr"]``; None or empty -> None."""
    if text is None:
        return None
    types = [t for t in re.split(r"[,\s]+", text.strip()) if t]
    if not types:
        raise ValueError("--types is empty; give the element of each LAMMPS type, e.g. Cu,Zr")
    return types


def _read_kwargs(fmt: str | None, types: list[str] | None) -> dict[str, Any]:
    if not types:
        return {}
    from ase.data import atomic_numbers

    unknown = [t for t in types if t not in atomic_numbers]
    if unknown:
        raise ValueError(f"--types must name chemical elements, got {unknown}")
    if fmt == "lammps-data":
        return {"Z_of_type": {k + 1: atomic_numbers[t] for k, t in enumerate(types)}}
    if fmt in ("lammps-dump-text", "lammps-dump-binary"):
        return {"specorder": list(types)}
    raise ValueError(
        f"--types applies to LAMMPS data and dump files only, not to format {fmt!r} "
        "(pass --format lammps-data or lammps-dump-text if the file name does not tell)"
    )


def _frames(
    path: str, fmt: str | None, index: str, types: list[str] | None
) -> Iterator[tuple[int, Any]]:
    import ase.io
    from ase.io.formats import UnknownFileTypeError

    if not os.path.exists(path):
        raise FileNotFoundError(f"input file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"input {path} is a directory, not a structure file")
    fmt = fmt or guess_format(path)
    kwargs = _read_kwargs(fmt, types)
    try:
        frames = ase.io.iread(path, index=index, format=fmt, **kwargs)
        yield from enumerate(frames)
    except UnknownFileTypeError as exc:
        raise ValueError(
            f"cannot tell the format of {path} ({exc}); pass --format (an ase.io format name)"
        ) from None
    except (OSError, StopIteration, IndexError, KeyError, UnicodeDecodeError) as exc:
        raise ValueError(f"could not read {path} as {fmt or 'a guessed format'}: {exc}") from exc


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

    from ._calculator import BARRIERS, SymGNNCalculator

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
                for k, atoms in _frames(path, fmt, index, types):
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


def run(args: argparse.Namespace) -> int:
    predict_files(
        inputs=list(args.inputs),
        output=args.output,
        model=args.model,
        device=args.device,
        label_name=args.label_name,
        fmt=args.format,
        index=args.index,
        types=parse_types(args.types),
        progress=not args.no_progress,
    )
    return 0
