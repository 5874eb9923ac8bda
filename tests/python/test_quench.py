"""Inherent-structure mode: quench a copy (LAMMPS or any ASE calculator), never the input."""

from __future__ import annotations

import numpy as np
import pytest

from symgnn_ase.potential.eam import lammps_potential_path
from symgnn_ase.potential.lammps import open_lammps
from symgnn_ase.potential.quench import QuenchSettings, quench_ase, quench_lammps
from symgnn_ase.testing import random_glass


@pytest.fixture(scope="module")
def potential():
    return lammps_potential_path("CuZr_mm.eam.fs")


@pytest.fixture(scope="module")
def hot():
    atoms = random_glass(150, seed=11)
    atoms.arrays["energy_barrier"] = np.linspace(1.0, 2.0, len(atoms))
    return atoms


def test_quench_lammps_leaves_input_and_matches_a_separate_minimization(hot, potential):
    before = hot.copy()
    settings = QuenchSettings(fmax=1e-3, max_steps=2000)
    q = quench_lammps(hot, potential, settings)
    np.testing.assert_array_equal(hot.positions, before.positions)
    np.testing.assert_array_equal(hot.arrays["energy_barrier"], before.arrays["energy_barrier"])
    assert q is not hot and np.abs(q.positions - hot.positions).max() > 1e-3
    # the same minimization run by hand gives the same structure (modulo wrapping)
    lmp = open_lammps(hot, potential)
    lmp.command(f"minimize 0.0 {float(1e-3 * np.sqrt(len(hot)))!r} 2000 20000")
    x = np.array(lmp.gather_atoms("x", 1, 3)).reshape(-1, 3)
    lmp.close()
    d = (x - q.positions) @ np.linalg.inv(hot.cell.array)
    np.testing.assert_allclose(d - np.round(d), 0.0, atol=1e-10)
    # and each quenched atom is the image nearest its input position
    step = (q.positions - hot.positions) @ np.linalg.inv(hot.cell.array)
    assert np.abs(step).max() < 0.5


def test_quench_then_predict_equals_predict_on_minimized_copy(hot, potential, tmp_path):
    from symgnn_ase.calculator import SymGNNCalculator
    from symgnn_ase.testing import make_tiny_model

    make_tiny_model(tmp_path / "m.pt", kind="length")
    q = quench_lammps(hot, potential)
    plain = SymGNNCalculator(str(tmp_path / "m.pt"))
    direct = plain.get_property("energy_barriers", q.copy())
    from symgnn_ase.calculator import get_energy_barriers

    assert np.array_equal(direct, get_energy_barriers(q, str(tmp_path / "m.pt")))


def test_quench_ase_with_a_force_field(potential):
    from symgnn_ase.potential.lammps import import_lammps

    import_lammps()  # pip's mpich first, so that ASE's LAMMPSlib can import lammps
    from ase.calculators.lammpslib import LAMMPSlib

    atoms = random_glass(60, seed=3)
    before = atoms.positions.copy()
    calc = LAMMPSlib(
        lmpcmds=["pair_style eam/fs", f"pair_coeff * * {potential} Cu Zr"],
        atom_types={"Cu": 1, "Zr": 2},
        keep_alive=True,
    )
    q = quench_ase(atoms, calc, QuenchSettings(fmax=0.05, max_steps=500))
    np.testing.assert_array_equal(atoms.positions, before)
    assert atoms.calc is None and q.calc is None
    q.calc = calc
    assert np.sqrt((q.get_forces() ** 2).sum(axis=1)).max() < 0.05
    with pytest.raises(ValueError, match="needed"):
        quench_ase(atoms, None)


def test_quench_bad_input(hot, potential, tmp_path):
    with pytest.raises(FileNotFoundError, match="potential file not found"):
        quench_lammps(hot, tmp_path / "missing.eam.fs")
    bad = hot.copy()
    bad.symbols[3] = "Ni"
    with pytest.raises(ValueError, match=r"element\(s\) \['Ni'\].*not in the potential"):
        quench_lammps(bad, potential)
    nan = hot.copy()
    nan.positions[7, 1] = np.nan
    with pytest.raises(ValueError, match=r"non-finite positions for 1 atom\(s\) \(first: atom 7\)"):
        quench_lammps(nan, potential)
    with pytest.raises(ValueError, match="fmax must be a positive"):
        QuenchSettings(fmax=-1.0)
    with pytest.raises(ValueError, match="max_steps must be an integer"):
        QuenchSettings(max_steps=0)
    slab = hot.copy()
    slab.pbc = [True, True, False]
    with pytest.raises(ValueError, match="periodic in x, y and z"):
        quench_lammps(slab, potential)


def test_calculator_quench_modes(hot, potential, tmp_path):
    from symgnn_ase.calculator import SymGNNCalculator
    from symgnn_ase.potential.lammps import import_lammps
    from symgnn_ase.testing import make_tiny_model

    make_tiny_model(tmp_path / "m.pt", kind="length")
    model = str(tmp_path / "m.pt")
    atoms = hot.copy()
    before = atoms.positions.copy()
    calc = SymGNNCalculator(model, quench=str(potential), quench_fmax=1e-3)
    got = calc.get_property("energy_barriers", atoms)
    np.testing.assert_array_equal(atoms.positions, before)  # the user's atoms never move
    ref = SymGNNCalculator(model).get_property(
        "energy_barriers", quench_lammps(hot, potential, QuenchSettings(fmax=1e-3))
    )
    np.testing.assert_array_equal(got, ref)
    assert not np.array_equal(got, SymGNNCalculator(model).get_property("energy_barriers", hot))

    import_lammps()
    from ase.calculators.lammpslib import LAMMPSlib

    base = LAMMPSlib(
        lmpcmds=["pair_style eam/fs", f"pair_coeff * * {potential} Cu Zr"],
        atom_types={"Cu": 1, "Zr": 2},
        keep_alive=True,
    )
    small = random_glass(60, seed=4)
    start = small.positions.copy()
    small.calc = SymGNNCalculator(model, base=base, quench=True, quench_fmax=0.05)
    b = small.calc.get_property("energy_barriers", small)
    forces = small.get_forces()  # still the forces of the unquenched atoms
    np.testing.assert_array_equal(small.positions, start)
    assert np.isfinite(b).all() and np.abs(forces).max() > 0.05

    with pytest.raises(ValueError, match="quench=True minimizes with the forces of base"):
        SymGNNCalculator(model, quench=True)
    with pytest.raises(FileNotFoundError, match="quench: potential file not found"):
        SymGNNCalculator(model, quench=str(tmp_path / "none.eam.fs"))
