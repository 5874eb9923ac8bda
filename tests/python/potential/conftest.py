"""Fixtures the tests of the simulation's potential share."""

from __future__ import annotations

import ase
import pytest

from symgnn_ase.testing import random_glass


@pytest.fixture(scope="module")
def glass() -> ase.Atoms:
    """A rattled 150-atom Cu-Zr glass (the same for every module; tests must not change it)."""
    atoms = random_glass(150, seed=5)
    atoms.rattle(0.05, seed=6)
    return atoms
