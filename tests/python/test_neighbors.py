"""Neighbor list (symgnn_ase.neighbors) against ase.neighborlist.neighbor_list."""

from __future__ import annotations

import re
import zlib

import ase
import ase.io
import numpy as np
import pytest
from ase.neighborlist import neighbor_list
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symgnn_ase import _core, atoms_neighbors, neighbors

from ..paths import CUZR64, require_data


def ase_sorted(atoms: ase.Atoms, cutoff: float, n_receivers: int | None = None):
    i, j, S, D = neighbor_list("ijSD", atoms, cutoff)
    order = np.lexsort((S[:, 2], S[:, 1], S[:, 0], j, i))
    i, j, S, D = i[order], j[order], S[order], D[order]
    if n_receivers is not None:
        keep = i < n_receivers
        i, j, S, D = i[keep], j[keep], S[keep], D[keep]
    return i, j, S, D


def assert_matches_ase(atoms: ase.Atoms, cutoff: float, n_receivers: int | None = None) -> None:
    i, j, S, D = atoms_neighbors(atoms, cutoff, n_receivers=n_receivers)
    ia, ja, Sa, Da = ase_sorted(atoms, cutoff, n_receivers)
    assert i.dtype == np.int64 and j.dtype == np.int64
    assert S.dtype == np.int32 and D.dtype == np.float64
    assert S.shape == (len(i), 3) and D.shape == (len(i), 3)
    assert len(i) == len(ia), f"{len(i)} edges, ASE {len(ia)}"
    np.testing.assert_array_equal(i, ia)
    np.testing.assert_array_equal(j, ja)
    np.testing.assert_array_equal(S, Sa)
    np.testing.assert_allclose(D, Da, rtol=0, atol=1e-9)
    check_invariants(atoms, cutoff, (i, j, S, D), n_receivers)


def check_invariants(atoms: ase.Atoms, cutoff: float, result, n_receivers=None) -> None:
    i, j, S, D = result
    pos = atoms.positions
    cell = np.where(atoms.pbc[:, None], atoms.cell.array, 0.0)
    # D = r_j - r_i + S . cell exactly as documented
    shift = S[:, :1] * cell[0] + S[:, 1:2] * cell[1] + S[:, 2:] * cell[2]
    np.testing.assert_array_equal(D, (pos[j] - pos[i]) + shift)
    assert np.all(np.einsum("ij,ij->i", D, D) < cutoff * cutoff)
    # sorted by (i, j, S), no duplicates
    keys = np.stack([i, j, S[:, 0], S[:, 1], S[:, 2]], axis=1)
    if len(keys) > 1:
        diff = np.diff(keys, axis=0)
        first = np.argmax(diff != 0, axis=1)
        assert np.all(diff[np.arange(len(diff)), first] > 0)
    # no self pair with zero shift
    assert not np.any((i == j) & np.all(S == 0, axis=1))
    # periodic shifts only on periodic axes
    assert np.all(S[:, ~atoms.pbc] == 0)
    # symmetry: every i <- j (S) has j <- i (-S) when both receive
    n_recv = len(atoms) if n_receivers is None else n_receivers
    if len(i):
        n, off = len(atoms), int(np.abs(S).max())
        width = 2 * off + 1

        def encode(a, b, s):
            key = a.astype(np.int64) * n + b
            for c in range(3):
                key = key * width + (s[:, c] + off)
            return key

        forward = encode(i, j, S)
        back = j < n_recv
        assert np.all(np.isin(encode(j[back], i[back], -S[back]), forward))


def random_atoms(rng: np.random.Generator, n: int, cell, pbc, lo=0.0, hi=1.0) -> ase.Atoms:
    cell = np.asarray(cell, dtype=float)
    frac = rng.uniform(lo, hi, (n, 3))
    return ase.Atoms(f"Cu{n}", positions=frac @ cell, cell=cell, pbc=pbc)


# ------------------------------------------------------------------ real glass


def test_glass_train0_matches_ase() -> None:
    path = require_data(CUZR64 / "train0.extxyz")
    atoms = ase.io.read(path, index=0)
    assert_matches_ase(atoms, 5.0)


# ------------------------------------------------------------------ seeded structures

SKEWED = [[6.0, 0.0, 0.0], [4.0, 5.0, 0.0], [-2.5, 3.0, 4.5]]


@pytest.mark.parametrize(
    "name, n, cell, pbc, cutoff, lo, hi",
    [
        ("cubic wrapped", 200, np.eye(3) * 11.0, True, 4.0, 0, 1),
        ("cubic unwrapped", 200, np.eye(3) * 11.0, True, 4.0, -2.0, 3.0),
        ("skewed triclinic", 80, SKEWED, True, 5.5, 0, 1),
        ("skewed triclinic unwrapped", 80, SKEWED, True, 5.5, -1.5, 2.5),
        ("box smaller than 2 cutoff", 10, SKEWED, True, 9.0, 0, 1),
        ("partial pbc TFT", 100, SKEWED, [True, False, True], 4.5, -0.5, 1.5),
        ("partial pbc FFT", 100, SKEWED, [False, False, True], 4.5, -0.5, 1.5),
        ("partial pbc TTF", 100, SKEWED, [True, True, False], 4.5, 0, 1),
        ("cluster", 120, np.eye(3) * 9.0, False, 3.5, 0, 1),
    ],
)
def test_random_structures_match_ase(name, n, cell, pbc, cutoff, lo, hi) -> None:
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    atoms = random_atoms(rng, n, cell, pbc, lo, hi)
    assert_matches_ase(atoms, cutoff)


def test_one_atom_cell_cutoff_several_times_the_box() -> None:
    cell = np.array([[1.2, 0.0, 0.0], [0.3, 1.1, 0.0], [-0.2, 0.4, 1.3]])
    atoms = ase.Atoms("Cu", positions=[[0.1, 0.2, 0.3]], cell=cell, pbc=True)
    assert_matches_ase(atoms, 5.0)  # ~4-5 box lengths
    i, j, S, D = atoms_neighbors(atoms, 5.0)
    assert np.all(i == 0) and np.all(j == 0) and len(i) > 300


def test_atoms_exactly_on_cell_faces() -> None:
    grid = [0.0, 0.5, 1.0]
    frac = np.array([[x, y, z] for x in grid for y in grid for z in (0.0, 1.0)])
    cell = np.diag([4.0, 4.4, 4.8])
    atoms = ase.Atoms(f"Cu{len(frac)}", positions=frac @ cell, cell=cell, pbc=True)
    assert_matches_ase(atoms, 4.7)
    tri = np.array(SKEWED)
    atoms = ase.Atoms(f"Cu{len(frac)}", positions=frac @ tri, cell=tri, pbc=True)
    assert_matches_ase(atoms, 5.1)


def test_cluster_with_zero_cell() -> None:
    rng = np.random.default_rng(3)
    pos = rng.uniform(-5, 5, (60, 3))
    atoms = ase.Atoms("Cu60", positions=pos, pbc=False)
    i, j, S, D = neighbors(pos, None, False, 3.0)
    ia, ja, Sa, Da = ase_sorted(atoms, 3.0)
    np.testing.assert_array_equal(i, ia)
    np.testing.assert_array_equal(j, ja)
    assert np.all(S == 0)
    # a zero cell gives the same
    res = neighbors(pos, np.zeros((3, 3)), [False] * 3, 3.0)
    for a, b in zip(res, (i, j, S, D), strict=True):
        np.testing.assert_array_equal(a, b)


def test_planar_cluster_flat_axis() -> None:
    # all atoms share z: a flat bounding box on a non-periodic axis
    rng = np.random.default_rng(4)
    pos = np.c_[rng.uniform(0, 8, (50, 2)), np.full(50, 1.5)]
    atoms = ase.Atoms("Cu50", positions=pos, cell=np.eye(3) * 8, pbc=[True, True, False])
    assert_matches_ase(atoms, 3.0)


@pytest.mark.parametrize("n_receivers", [0, 1, 17, 150])
def test_n_receivers_subsets(n_receivers: int) -> None:
    rng = np.random.default_rng(5)
    atoms = random_atoms(rng, 150, SKEWED, [True, False, True], -0.5, 1.5)
    assert_matches_ase(atoms, 4.0, n_receivers=n_receivers)
    i, j, _, _ = atoms_neighbors(atoms, 4.0, n_receivers=n_receivers)
    assert np.all(i < n_receivers)
    if 0 < n_receivers < 150:
        assert np.any(j >= n_receivers)  # ghosts still send


def test_bit_identical_across_thread_counts() -> None:
    rng = np.random.default_rng(6)
    atoms = random_atoms(rng, 3000, np.eye(3) * 36.0, True, -0.3, 1.3)
    ref = atoms_neighbors(atoms, 5.0, n_threads=1)
    for t in (2, 3, 8):
        other = atoms_neighbors(atoms, 5.0, n_threads=t)
        for a, b in zip(ref, other, strict=True):
            assert a.tobytes() == b.tobytes()


def test_wrapped_and_unwrapped_agree() -> None:
    rng = np.random.default_rng(7)
    atoms = random_atoms(rng, 120, SKEWED, True, 0, 1)
    moved = atoms.copy()
    images = rng.integers(-3, 4, (len(atoms), 3))
    moved.positions += images @ atoms.cell.array
    i, j, S, D = atoms_neighbors(atoms, 5.0)
    i2, j2, S2, D2 = atoms_neighbors(moved, 5.0)
    np.testing.assert_array_equal(i, i2)
    # same pairs; shifts compensate the images: S2 = S + n_i - n_j
    expected = S + images[i] - images[j]
    key1 = {(a, b, *s) for a, b, s in zip(i.tolist(), j.tolist(), expected.tolist(), strict=True)}
    key2 = {(a, b, *s) for a, b, s in zip(i2.tolist(), j2.tolist(), S2.tolist(), strict=True)}
    assert key1 == key2
    np.testing.assert_allclose(
        np.sort(np.linalg.norm(D, axis=1)), np.sort(np.linalg.norm(D2, axis=1)), atol=1e-9
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 30),
    pbc=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    cutoff=st.floats(0.5, 7.0),
    skew=st.floats(0.0, 0.9),
    unwrapped=st.booleans(),
)
def test_hypothesis_random_cells(seed, n, pbc, cutoff, skew, unwrapped) -> None:
    rng = np.random.default_rng(seed)
    lengths = rng.uniform(1.0, 6.0, 3)
    cell = np.diag(lengths) + skew * np.triu(rng.uniform(-1, 1, (3, 3)), 1).T * lengths[:, None]
    lo, hi = (-1.5, 2.5) if unwrapped else (0.0, 1.0)
    atoms = random_atoms(rng, n, cell, list(pbc), lo, hi)
    n_receivers = int(rng.integers(0, n + 1))
    assert_matches_ase(atoms, cutoff, n_receivers=n_receivers)


def test_empty_input() -> None:
    i, j, S, D = neighbors(np.zeros((0, 3)), np.eye(3), True, 3.0)
    assert i.shape == (0,) and j.shape == (0,) and S.shape == (0, 3) and D.shape == (0, 3)


def test_array_likes_and_int_positions() -> None:
    i, j, S, D = neighbors([[0, 0, 0], [1, 0, 0]], [[5, 0, 0], [0, 5, 0], [0, 0, 5]], [1, 1, 1], 2)
    assert i.tolist() == [0, 1] and j.tolist() == [1, 0]
    np.testing.assert_array_equal(D, [[1.0, 0, 0], [-1.0, 0, 0]])


# ------------------------------------------------------------------ bad input

GOOD = dict(positions=np.zeros((2, 3)), cell=np.eye(3) * 5.0, pbc=True, cutoff=2.0)


def call(**overrides):
    kwargs = dict(GOOD)
    kwargs.update(overrides)
    return neighbors(**kwargs)


def test_nan_position_names_the_atom() -> None:
    pos = np.zeros((4, 3))
    pos[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"positions\[2\] is not finite"):
        call(positions=pos)


def test_inf_position_names_the_atom() -> None:
    pos = np.zeros((4, 3))
    pos[3, 0] = -np.inf
    with pytest.raises(ValueError, match=r"positions\[3\] is not finite: \(-inf"):
        call(positions=pos)


@pytest.mark.parametrize("cutoff", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_cutoff(cutoff: float) -> None:
    with pytest.raises(ValueError, match=r"cutoff must be a finite number > 0, got"):
        call(cutoff=cutoff)


def test_cutoff_wrong_type() -> None:
    with pytest.raises(TypeError, match="cutoff must be a real number, got str"):
        call(cutoff="5")


def test_singular_cell_on_periodic_axis() -> None:
    cell = np.array([[5.0, 0, 0], [10.0, 0, 0], [0, 0, 5.0]])
    with pytest.raises(ValueError, match=r"cell is singular on the periodic axes"):
        call(cell=cell)
    with pytest.raises(ValueError, match=r"zero-length lattice vector"):
        call(cell=np.zeros((3, 3)), pbc=[True, False, False])
    # fine when the degenerate axes are not periodic
    call(cell=np.diag([5.0, 0.0, 0.0]), pbc=[True, False, False])


def test_nonfinite_cell_on_periodic_axis() -> None:
    cell = np.eye(3) * 5.0
    cell[1, 1] = np.nan
    with pytest.raises(ValueError, match=r"cell row 1 \(a periodic axis\) is not finite"):
        call(cell=cell)


def test_cell_none_with_pbc() -> None:
    with pytest.raises(ValueError, match=r"cell is None but pbc"):
        call(cell=None)


@pytest.mark.parametrize(
    "overrides, pattern",
    [
        (
            dict(positions=np.zeros((3, 2))),
            r"positions must have shape \(n, 3\), got shape \(3, 2\)",
        ),
        (dict(positions=np.zeros(3)), r"positions must have shape \(n, 3\), got shape \(3,\)"),
        (dict(cell=np.eye(2)), r"cell must have shape \(3, 3\), got shape \(2, 2\)"),
        (dict(pbc=[True, False]), r"pbc must be a bool or 3 bools, got shape \(2,\)"),
        (dict(pbc=[0, 2, 1]), r"pbc must hold booleans"),
        (dict(positions=[[0, 0], [1, 1, 1]]), r"positions could not be converted"),
    ],
)
def test_wrong_shapes(overrides, pattern) -> None:
    with pytest.raises(ValueError, match=pattern):
        call(**overrides)


def test_wrong_dtypes() -> None:
    with pytest.raises(TypeError, match="positions must hold real numbers, got dtype <U1"):
        call(positions=[["a", "b", "c"]])
    with pytest.raises(TypeError, match="cell must hold real numbers, got dtype complex128"):
        call(cell=np.eye(3) * (1 + 1j))
    with pytest.raises(TypeError, match="pbc must hold booleans, got dtype float64"):
        call(pbc=np.ones(3))


@pytest.mark.parametrize("n_receivers", [-1, 3])
def test_n_receivers_out_of_range(n_receivers: int) -> None:
    with pytest.raises(
        ValueError, match=rf"n_receivers must be in \[0, n_atoms=2\], got {n_receivers}"
    ):
        call(n_receivers=n_receivers)
    with pytest.raises(TypeError, match="n_receivers must be an int or None, got float"):
        call(n_receivers=1.0)


def test_image_explosion_is_a_clear_error() -> None:
    with pytest.raises(
        ValueError, match=r"cutoff 100 is too large for the cell .* periodic images"
    ):
        call(cell=np.eye(3) * 0.05, cutoff=100.0)


def test_core_validates_dtype_and_shape() -> None:
    pos32 = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="positions must have dtype float64, got float32"):
        _core.neighbors(pos32, np.eye(3), np.ones(3, bool), 2.0)
    with pytest.raises(ValueError, match=re.escape("cell must have shape (3, 3), got shape (9,)")):
        _core.neighbors(np.zeros((2, 3)), np.eye(3).ravel(), np.ones(3, bool), 2.0)
    with pytest.raises(ValueError, match="pbc must have dtype bool, got int64"):
        _core.neighbors(np.zeros((2, 3)), np.eye(3), np.ones(3, np.int64), 2.0)
    with pytest.raises(ValueError, match="positions must be C-contiguous"):
        _core.neighbors(np.zeros((3, 2)).T, np.eye(3), np.ones(3, bool), 2.0)


def test_atoms_neighbors_rejects_non_atoms() -> None:
    with pytest.raises(TypeError, match="atoms must be an ase.Atoms, got list"):
        atoms_neighbors([[0, 0, 0]], 3.0)


def test_cuda_available_is_bool() -> None:
    assert isinstance(_core.cuda_available(), bool)


def test_release_memory_then_recompute() -> None:
    rng = np.random.default_rng(8)
    atoms = random_atoms(rng, 4000, np.eye(3) * 40.0, True)
    first = atoms_neighbors(atoms, 5.0)  # large enough for the block pool
    del first
    ref = atoms_neighbors(atoms, 5.0)  # reuses the freed block
    _core.release_memory()
    again = atoms_neighbors(atoms, 5.0)
    for a, b in zip(ref, again, strict=True):
        assert a.tobytes() == b.tobytes()
