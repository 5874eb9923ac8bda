"""Callers of a model with per-atom inputs (metadata ``node_inputs``): the ASE calculator with
``base=``, ``potential=`` or the file's potential, and ``symgnn predict --potential``, all on the
copy the relax protocol moved; refusals when no inputs can be had; the out-of-range warning."""

from __future__ import annotations

import logging
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from symgnn_ase.calculator import SymGNNCalculator
from symgnn_ase.cli import main
from symgnn_ase.data.graph import graph_from_atoms
from symgnn_ase.export import load_model
from symgnn_ase.potential import RelaxProtocol, relax_positions, write_relax_metadata
from symgnn_ase.potential.inputs import NodeInputSpec
from symgnn_ase.potential.lammps import LammpsPotential
from symgnn_ase.testing import random_glass

from .calc_helpers import barriers as _barriers
from .node_inputs_helpers import POTENTIAL, fit_pe_ridge, with_metadata

B = "energy_barriers"
PROTOCOL = RelaxProtocol(3, 0.12, 0.3, POTENTIAL, "eam/fs")


class LammpsCalc(Calculator):
    """An ASE calculator on the in-process LAMMPS, per-atom energies ``scale * pe + shift``."""

    implemented_properties = ["energy", "energies", "forces"]

    def __init__(self, shift: float = 0.0, scale: float = 1.0) -> None:
        super().__init__()
        self.pot = LammpsPotential(POTENTIAL)
        self.shift, self.scale = shift, scale

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        _, pe, f = self.pot.evaluate(self.atoms)
        pe = self.scale * pe + self.shift
        self.results = {"energy": float(pe.sum()), "energies": pe, "forces": f}


class NoEnergies(Calculator):
    implemented_properties = ["energy", "forces"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("node_inputs_calc")
    plain = fit_pe_ridge(folder)
    relax = write_relax_metadata(plain, folder / "relax.pt", PROTOCOL)
    spec = load_model(plain).node_inputs
    nameless = NodeInputSpec(spec.names, None, None, spec.stats)
    return {
        "plain": plain,
        "relax": relax,
        "nameless": with_metadata(plain, folder / "nameless.pt", node_inputs=nameless.to_json()),
    }


def _by_hand(model: Path, atoms, protocol: RelaxProtocol | None) -> np.ndarray:
    """The module called on the copy moved by ``protocol`` with that copy's LAMMPS energies."""
    loaded = load_model(model)
    with LammpsPotential(POTENTIAL) as pot:
        x = atoms.positions
        if protocol is not None:
            x = relax_positions(x, lambda y: pot.forces(atoms, y), protocol)
        work = atoms.copy()
        work.positions = x
        pe = pot.energies(work)
    g = graph_from_atoms(work, loaded.r_max, loaded.type_names, torch.float64)
    with torch.no_grad():
        out = loaded.module(
            g.species, g.edge_index, g.edge_vec, None, torch.from_numpy(pe[:, None])
        )
    return out.numpy()


@pytest.mark.parametrize("name", ["plain", "relax"])
def test_base_potential_and_the_files_own_agree_on_the_moved_copy(models, glass, name) -> None:
    before = glass.positions.copy()
    own = _barriers(models[name], glass)
    np.testing.assert_allclose(
        own, _by_hand(models[name], glass, PROTOCOL if name == "relax" else None), atol=1e-10
    )
    np.testing.assert_allclose(_barriers(models[name], glass, potential=POTENTIAL), own, atol=1e-10)
    base = LammpsCalc()
    np.testing.assert_allclose(_barriers(models[name], glass, base=base), own, atol=1e-10)
    assert np.array_equal(glass.positions, before)
    if name == "relax":  # the inputs are the moved copy's, not the input's
        assert np.abs(own - _by_hand(models[name], glass, None)).max() > 1e-4


def test_predict_with_potential_equals_the_calculator_with_base(models, glass, tmp_path) -> None:
    ase.io.write(tmp_path / "in.extxyz", glass)
    out = tmp_path / "out.extxyz"
    rc = main(
        ["predict", "--no-progress", str(tmp_path / "in.extxyz"), "-o", str(out)]
        + ["--model", str(models["relax"]), "--potential", POTENTIAL]
    )
    assert rc == 0
    written = ase.io.read(out).arrays["energy_barrier"]
    read_back = ase.io.read(tmp_path / "in.extxyz")  # positions as written (8 decimals)
    direct = _barriers(models["relax"], read_back, base=LammpsCalc())
    np.testing.assert_allclose(written, direct, rtol=0, atol=1e-8)  # extxyz: 8 decimals


def test_rotation_invariant(models, glass) -> None:
    ref = _barriers(models["relax"], glass)
    rng = np.random.default_rng(1)
    for _ in range(2):
        q, r = np.linalg.qr(rng.standard_normal((3, 3)))
        q = q * np.sign(np.diag(r))
        if np.linalg.det(q) < 0:
            q[:, 0] = -q[:, 0]
        turned = glass.copy()
        turned.set_cell(glass.cell.array @ q.T)
        turned.positions = glass.positions @ q.T
        np.testing.assert_allclose(_barriers(models["relax"], turned), ref, rtol=0, atol=1e-6)


def test_no_inputs_no_prediction(models, glass, tmp_path, capsys) -> None:
    with pytest.raises(ValueError, match="model file names no potential and none was given"):
        SymGNNCalculator(str(models["nameless"]))
    with pytest.raises(ValueError, match=r"lacks element\(s\) \['Zr'\]"):
        SymGNNCalculator(str(models["plain"]), potential="Cu_mishin1.eam.alloy")
    with pytest.raises(ValueError, match="does not give per-atom energies"):
        SymGNNCalculator(str(models["plain"]), base=NoEnergies())
    with pytest.raises(FileNotFoundError, match="nope.eam.fs"):
        SymGNNCalculator(str(models["plain"]), potential="nope.eam.fs")
    # a nameless model works with a potential given
    assert _barriers(models["nameless"], glass, potential=POTENTIAL).shape == (len(glass),)
    ase.io.write(tmp_path / "in.extxyz", glass)
    rc = main(
        ["predict", "--no-progress", str(tmp_path / "in.extxyz"), "-o", str(tmp_path / "o.xyz")]
        + ["--model", str(models["nameless"])]
    )
    assert rc != 0 and "names no potential" in capsys.readouterr().err
    assert not (tmp_path / "o.xyz").exists()


def test_far_inputs_warn_once(models, glass, caplog) -> None:
    calc = SymGNNCalculator(str(models["plain"]), base=LammpsCalc(shift=4.0))
    other = random_glass(150, seed=9)
    with caplog.at_level(logging.WARNING, logger="symgnn_ase"):
        calc.get_property(B, glass)
        calc.get_property(B, other)
    far = [r for r in caplog.records if "far from the model's training data" in r.getMessage()]
    assert len(far) == 1
    text = far[0].getMessage()
    assert "'pe' of Cu" in text and "'pe' of Zr" in text and "more than 3 std" in text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="symgnn_ase"):
        _barriers(models["plain"], glass, base=LammpsCalc(shift=0.01))
    assert not [r for r in caplog.records if "far from" in r.getMessage()]


def test_an_emt_base_gives_its_energies(models, caplog) -> None:
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(4)
    atoms.rattle(0.02, seed=2)
    with caplog.at_level(logging.WARNING, logger="symgnn_ase"):
        got = _barriers(models["plain"], atoms, base=EMT())
    assert any("'pe' of Cu" in r.getMessage() for r in caplog.records)  # EMT's scale: far
    loaded = load_model(models["plain"])
    emt = EMT()
    pe = emt.get_property("energies", atoms.copy())
    g = graph_from_atoms(atoms, loaded.r_max, loaded.type_names, torch.float64)
    with torch.no_grad():
        ref = loaded.module(
            g.species, g.edge_index, g.edge_vec, None, torch.from_numpy(pe[:, None])
        )
    np.testing.assert_allclose(got, ref.numpy(), atol=1e-10)
