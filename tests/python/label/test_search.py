"""The carve-out is exact, a search is a pure function of its task, the record rules hold."""

from __future__ import annotations

import json

import numpy as np
import pytest

from symgnn_ase.label.artn import SearchTask, run_search
from symgnn_ase.label.carve import carve_region
from symgnn_ase.label.config import RECORD_VERSION, LabelConfig
from symgnn_ase.label.engine import ForceEngine, load_potential
from symgnn_ase.label.records import RecordLog, check_manifest, comparable, duplicate_of

STATUSES = {"accepted", "failed", "negative_barrier", "no_event", "disconnected"}


def _regions(atoms, pot, index, active, shell):
    args = (atoms.get_positions(), atoms.cell.array, atoms.get_chemical_symbols(), index, active)
    return carve_region(*args, shell, pot, True), carve_region(*args, shell, pot, False)


def test_carve_out_gives_full_box_forces_and_energy_differences(small_glass, potential_path):
    """With the exact shell (2 r_rho = 12 Å) the moving atoms feel the full box exactly."""
    import ase.io

    pot = load_potential(potential_path)
    atoms = ase.io.read(small_glass).repeat(2)  # 31.7 Å box: room for a 15 Å carve-out
    carved, full = _regions(atoms, pot, 17, 3.0, pot.exact_shell)
    assert len(carved.ids) < len(full.ids) and carved.inert_from is not None
    assert np.array_equal(np.sort(carved.ids[carved.moving]), np.flatnonzero(full.moving))
    rng = np.random.default_rng(0)
    kick = rng.normal(0.0, 0.15, (int(full.moving.sum()), 3))  # in glass-index order
    results = []
    for region in (carved, full):
        order = np.argsort(region.ids[region.moving])
        dx = np.empty_like(kick)
        dx[order] = kick
        with ForceEngine(region, pot) as engine:
            e0, _ = engine(engine.initial())
            e1, f1 = engine(engine.initial() + dx)
        results.append((e1 - e0, f1[order]))
    assert results[0][0] == pytest.approx(results[1][0], abs=1e-8)
    assert np.abs(results[0][1] - results[1][1]).max() < 1e-9


def test_a_search_is_reproducible(small_glass, potential_path, fast_config):
    import ase.io

    pot = load_potential(potential_path)
    atoms = ase.io.read(small_glass)
    region, _ = _regions(atoms, pot, 7, fast_config.active_radius, fast_config.shell_width)
    task = SearchTask(7, 0, region, pot, fast_config)
    first, second = run_search(task), run_search(task)
    assert comparable(first) == comparable(second)
    assert first["status"] in STATUSES and first["version"] == RECORD_VERSION
    assert first["force_calls"] == sum(first["force_calls_by_stage"].values()) > 0
    json.dumps(first, allow_nan=False)  # a JSON record
    if first["status"] == "accepted":
        assert first["barrier"] == pytest.approx(first["e_saddle"] - first["e_initial"])
        assert first["barrier"] > 0 and first["displacement"] >= fast_config.same_minimum_tol
    other = run_search(SearchTask(7, 1, region, pot, fast_config))  # another seed
    assert comparable(other) != comparable(first)


def _event(search, e_saddle, moves):
    return {"search": search, "status": "accepted", "e_saddle": e_saddle, "saddle_moves": moves}


def test_duplicate_rule():
    cfg = LabelConfig()
    first = _event(0, -10.0, [[5, 0.5, 0.0, 0.0], [6, 0.0, 0.3, 0.0]])
    same = _event(1, -10.0004, [[5, 0.52, 0.0, 0.0], [6, 0.0, 0.3, 0.05]])
    shifted = _event(2, -10.0004, [[5, 0.5, 0.0, 0.0], [6, 0.0, 0.3, 0.0], [9, 0.2, 0.0, 0.0]])
    higher = _event(3, -9.99, first["saddle_moves"])
    assert duplicate_of(same, [first], cfg) == 0
    assert duplicate_of(shifted, [first], cfg) is None  # atom 9 moved 0.2 Å more
    assert duplicate_of(higher, [first], cfg) is None  # 10 meV higher saddle
    assert duplicate_of(first, [], cfg) is None


def test_record_log_drops_a_torn_line_and_checks_order(tmp_path):
    path = tmp_path / "searches.jsonl"
    log = RecordLog(path)
    for k in range(2):
        log.append({"version": RECORD_VERSION, "atom": 3, "search": k, "status": "failed"})
    with open(path, "a") as fh:
        fh.write('{"version": 1, "atom": 3, "sea')  # killed mid-write
    again = RecordLog(path)
    assert [r["search"] for r in again.records] == [0, 1]
    assert path.read_text().endswith("\n")
    assert list(again.by_atom()) == [3]
    again.append({"version": RECORD_VERSION, "atom": 3, "search": 3, "status": "failed"})
    with pytest.raises(ValueError, match=r"atom 3 has searches \[0, 1, 3\]"):
        RecordLog(path).by_atom()
    path.write_text('{"version": 0, "atom": 1, "search": 0}\n')
    with pytest.raises(ValueError, match="record version 0"):
        RecordLog(path)


def test_manifest_mismatch_names_the_field(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"protocol": {"active_radius": 8.0, "seed": 0}}))
    check_manifest(path, {"protocol": {"active_radius": 8.0, "seed": 0}}, ["protocol"])
    with pytest.raises(ValueError, match=r"protocol differs: active_radius: 8.0 there, 6.0 now"):
        check_manifest(path, {"protocol": {"active_radius": 6.0, "seed": 0}}, ["protocol"])
