"""SymGNNCalculator with the relax protocol: the model predicts on a private copy moved K steps
along base's forces, an EAM file's, or the file's own potential; the user's atoms never move."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from symgnn_ase.calculator import SymGNNCalculator
from symgnn_ase.potential import RelaxProtocol, relax_positions, write_relax_metadata
from symgnn_ase.potential.lammps import LammpsPotential
from symgnn_ase.testing import make_tiny_model

from .calc_helpers import barriers as _barriers

PROTOCOL = RelaxProtocol(4, 0.12, 0.3, "CuZr_mm.eam.fs", "eam/fs")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("relax_models")
    plain = folder / "plain.pt"
    make_tiny_model(plain, "length")
    out = {"plain": plain}
    for name, protocol in {
        "relax": PROTOCOL,
        "off": RelaxProtocol(0, 0.12, 0.3, "CuZr_mm.eam.fs", "eam/fs"),
        "nameless": RelaxProtocol(2, 0.1, 0.2),
        "missing": RelaxProtocol(2, 0.1, 0.2, "nope.eam.fs", "eam/fs"),
    }.items():
        out[name] = write_relax_metadata(plain, folder / f"{name}.pt", protocol)
    return out


def test_no_relax_metadata_or_zero_steps_is_the_plain_model_bit_for_bit(models, glass) -> None:
    plain = _barriers(models["plain"], glass)
    assert SymGNNCalculator(str(models["plain"])).relax == RelaxProtocol.off()
    assert np.array_equal(_barriers(models["off"], glass), plain)
    assert np.array_equal(_barriers(models["relax"], glass, relax_steps=0), plain)
    # no potential is needed when nothing moves
    assert np.array_equal(_barriers(models["nameless"], glass, relax_steps=0), plain)


def test_default_path_uses_the_potential_the_file_names(models, glass) -> None:
    before = glass.copy()
    calc = SymGNNCalculator(str(models["relax"]))
    assert calc.relax == PROTOCOL
    barriers = calc.get_property("energy_barriers", glass)
    # the user's atoms never move
    assert np.array_equal(glass.positions, before.positions) and glass.calc is None
    with LammpsPotential("CuZr_mm.eam.fs") as pot:
        x = relax_positions(glass.positions, lambda x: pot.forces(glass, x), PROTOCOL)
    assert 0.01 < np.abs(x - glass.positions).max() <= 4 * 0.3 + 1e-12
    moved = glass.copy()
    moved.positions = x
    expected = _barriers(models["plain"], moved)
    np.testing.assert_allclose(barriers, expected, rtol=0, atol=1e-6)
    assert not np.allclose(barriers, _barriers(models["plain"], glass), atol=1e-6)
    # the LAMMPS instance is kept between predictions, and a cached result is reused
    engine = calc._relax_forces.engine()
    rattled = glass.copy()
    rattled.rattle(0.01, seed=1)
    calc.get_property("energy_barriers", rattled)
    assert calc._relax_forces.engine() is engine and engine.calls == 8
    calc.close()


def test_overrides(models, glass) -> None:
    calc = SymGNNCalculator(str(models["relax"]), relax_steps=1, relax_alpha=0.05, relax_cap=0.1)
    assert calc.relax == RelaxProtocol(1, 0.05, 0.1, "CuZr_mm.eam.fs", "eam/fs")
    with LammpsPotential("CuZr_mm.eam.fs") as pot:
        x = relax_positions(glass.positions, lambda x: pot.forces(glass, x), calc.relax)
    moved = glass.copy()
    moved.positions = x
    np.testing.assert_allclose(
        calc.get_property("energy_barriers", glass),
        _barriers(models["plain"], moved),
        rtol=0,
        atol=1e-6,
    )
    calc.close()
    # a model without relax metadata relaxes when asked, with the default alpha and cap
    asked = SymGNNCalculator(str(models["plain"]), relax_steps=2, potential="CuZr_mm.eam.fs")
    assert asked.relax == RelaxProtocol(2)
    with pytest.raises(ValueError, match="relax cap must be a finite number > 0, got -1"):
        SymGNNCalculator(str(models["relax"]), relax_cap=-1)


class CountingEMT(EMT):
    calls = 0

    def calculate(self, *args, **kwargs):
        type(self).calls += 1
        super().calculate(*args, **kwargs)


def test_base_forces_drive_the_relax_and_md_is_unchanged(models) -> None:
    atoms = bulk("Cu", "fcc", a=3.62, cubic=True).repeat(3)
    atoms.rattle(0.08, seed=2)
    before = atoms.copy()
    base = CountingEMT()
    calc = SymGNNCalculator(str(models["relax"]), base=base)
    atoms.calc = calc
    forces = atoms.get_forces()
    n_calls = CountingEMT.calls
    barriers = calc.get_property("energy_barriers", atoms)
    # one force call per step on the copy; the first, at the user's positions, is base's cache
    assert CountingEMT.calls == n_calls + 3
    # the user's atoms never moved, and base still holds their results (no repeated call)
    assert np.array_equal(atoms.positions, before.positions)
    assert np.array_equal(atoms.get_forces(), forces) and CountingEMT.calls == n_calls + 3
    ref = before.copy()
    ref.calc = EMT()

    def emt_forces(x: np.ndarray) -> np.ndarray:
        ref.positions = x
        return ref.get_forces()

    moved = before.copy()
    moved.positions = relax_positions(before.positions, emt_forces, PROTOCOL)
    np.testing.assert_allclose(barriers, _barriers(models["plain"], moved), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="base= and potential= both"):
        SymGNNCalculator(str(models["relax"]), base=EMT(), potential="CuZr_mm.eam.fs")


def test_clear_errors_when_no_forces_can_be_had(models, glass) -> None:
    with pytest.raises(ValueError, match=r"names no potential.*base=.*potential=.*relax_steps=0"):
        SymGNNCalculator(str(models["nameless"]))
    with pytest.raises(FileNotFoundError, match=r"relax potential 'nope.eam.fs' not found"):
        SymGNNCalculator(str(models["missing"]))
    # either can be given instead
    SymGNNCalculator(str(models["missing"]), potential="CuZr_mm.eam.fs").close()
    SymGNNCalculator(str(models["nameless"]), base=EMT()).close()
    # a potential nothing would use
    with pytest.raises(ValueError, match=r"plain.pt has none .*pass relax_steps=K"):
        SymGNNCalculator(str(models["plain"]), potential="CuZr_mm.eam.fs")
    SymGNNCalculator(str(models["plain"]), potential="CuZr_mm.eam.fs", relax_steps=0).close()
    # a cluster cannot go to LAMMPS: what to pass instead
    cluster = glass.copy()
    cluster.pbc = False
    calc = SymGNNCalculator(str(models["relax"]))
    with pytest.raises(ValueError, match=r"periodic in x, y and z.*pass base=.*relax_steps=0"):
        calc.get_property("energy_barriers", cluster)
    # an element the potential lacks: named with the potential's elements
    calc = SymGNNCalculator(str(models["relax"]), potential="Cu_mishin1.eam.alloy")
    with pytest.raises(ValueError, match=r"\['Zr'\].*Cu_mishin1.eam.alloy \(it has \['Cu'\]\)"):
        calc.get_property("energy_barriers", glass)
    calc.close()


def test_a_shared_lammps_potential(models, glass) -> None:
    with LammpsPotential("CuZr_mm.eam.fs") as pot:
        calc = SymGNNCalculator(str(models["relax"]), potential=pot)
        assert calc.relax_potential == pot.path
        shared = calc.get_property("energy_barriers", glass)
        calc.close()
        assert pot._lmp is not None and pot.calls == 4  # the caller's instance, left open
    assert np.array_equal(shared, _barriers(models["relax"], glass))
