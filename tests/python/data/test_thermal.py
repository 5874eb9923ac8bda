"""Thermal snapshots keep each atom's label by identity; the in-process LAMMPS MD is seeded."""

from __future__ import annotations

import numpy as np
import pytest

from symgnn_ase.data.thermal import attach_labels, run_thermal
from symgnn_ase.potential.eam import lammps_potential_path, potential_elements
from symgnn_ase.potential.lammps import lammps_box
from symgnn_ase.testing import random_glass


@pytest.fixture(scope="module")
def glass():
    atoms = random_glass(120, seed=5)
    rng = np.random.default_rng(0)
    atoms.arrays["energy_barrier"] = rng.uniform(0.5, 3.0, len(atoms))
    return atoms


def test_shuffled_and_wrapped_snapshot_keeps_labels(glass):
    rng = np.random.default_rng(1)
    moved = glass.get_positions() + rng.normal(0, 0.1, (len(glass), 3))
    # wrap (as LAMMPS stores positions) and list atoms in a random order
    frac = moved @ np.linalg.inv(glass.cell.array)
    wrapped = (frac % 1.0) @ glass.cell.array
    perm = rng.permutation(len(glass))
    out = attach_labels(glass, perm, wrapped[perm])
    np.testing.assert_array_equal(out.arrays["energy_barrier"], glass.arrays["energy_barrier"])
    assert out.get_chemical_symbols() == glass.get_chemical_symbols()
    np.testing.assert_allclose(out.positions, wrapped, atol=1e-12)
    # the displacement is the minimum-image one, not the wrap
    np.testing.assert_allclose(out.arrays["displacement"], moved - glass.positions, atol=1e-9)
    # the labels are copies: changing the output leaves the reference alone
    out.arrays["energy_barrier"][0] = -1.0
    assert glass.arrays["energy_barrier"][0] != -1.0


def test_attach_labels_refuses_bad_ids(glass):
    pos = glass.get_positions()
    with pytest.raises(ValueError, match="ids must be a permutation of 0..119"):
        attach_labels(glass, np.zeros(len(glass), dtype=int), pos)
    with pytest.raises(ValueError, match=r"positions must be \[120, 3\]"):
        attach_labels(glass, np.arange(len(glass)), pos[:10])


def test_potential_and_box_checks(tmp_path):
    pot = lammps_potential_path("CuZr_mm.eam.fs")
    assert potential_elements(pot) == ["Cu", "Zr"]
    with pytest.raises(FileNotFoundError, match="potential file not found"):
        potential_elements(tmp_path / "none.eam.fs")
    junk = tmp_path / "junk.eam.fs"
    junk.write_text("a\nb\nc\nnot a number\n")
    with pytest.raises(ValueError, match="not an EAM setfl/fs potential"):
        potential_elements(junk)
    with pytest.raises(ValueError, match="lower-triangular"):
        lammps_box(np.array([[10.0, 1.0, 0], [0, 10, 0], [0, 0, 10]]))


def test_md_is_seeded_and_labels_follow(glass):
    pot = lammps_potential_path("CuZr_mm.eam.fs")
    kw = dict(temps=[600.0], time_ps=0.02, snapshots_ps=[0.02], seeds={600.0: 7})
    runs = [list(run_thermal(glass, pot, **kw)) for _ in range(2)]
    (t0, ids0, x0, _), (t1, ids1, x1, info1) = runs[0]
    assert t0 == 0.0 and t1 == 600.0 and info1[0]["seed"] == 7
    # the same seed gives the same trajectory, bit for bit
    np.testing.assert_array_equal(runs[0][1][2][0], runs[1][1][2][0])
    snap = attach_labels(glass, ids1, x1[0])
    np.testing.assert_array_equal(snap.arrays["energy_barrier"], glass.arrays["energy_barrier"])
    # from the (random, unrelaxed) reference: minimization and MD both move the atoms
    assert np.isfinite(snap.arrays["displacement"]).all()
    assert np.abs(snap.arrays["displacement"]).max() > 0.0
    with pytest.raises(ValueError, match="element"):
        bad = glass.copy()
        bad.symbols[0] = "Ni"
        list(run_thermal(bad, pot, **kw))
