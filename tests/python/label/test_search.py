"""The carve-out is exact, a search is a pure function of its task, the record rules hold."""

from __future__ import annotations

import json

import numpy as np
import pytest

from symgnn_ase.label.artn import Search, SearchTask, exchanged_atoms, run_search
from symgnn_ase.label.carve import carve_region, region_around
from symgnn_ase.label.config import RECORD_VERSION, LabelConfig
from symgnn_ase.label.engine import ForceEngine
from symgnn_ase.label.records import (
    RecordLog,
    check_manifest,
    comparable,
    duplicate_of,
    write_json_atomic,
)
from symgnn_ase.potential.eam import load_potential

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


def test_carve_out_and_full_box_kick_the_same_atoms_the_same_way(small_glass, potential_path):
    """The kick's random rows go to the kicked atoms nearest first, in both region layouts (the
    carve-out lists atoms by distance, the full box in glass order)."""
    import ase.io

    pot = load_potential(potential_path)
    atoms = ase.io.read(small_glass).repeat(2)
    for index in (0, 17, 301):
        carved, full = _regions(atoms, pot, index, 3.7, pot.exact_shell)
        kc, kf = carved.moving_within(3.7), full.moving_within(3.7)
        assert kc.size > 5
        assert np.array_equal(carved.ids[carved.moving][kc], full.ids[full.moving][kf])
        assert np.all(np.diff(full.distance[full.moving][kf]) >= 0)
    # the helper the scripts use gives the same regions
    cfg = LabelConfig(active_radius=3.7)
    for flag, region in ((True, carved), (False, full)):
        again = region_around(atoms, 301, cfg, pot, carve=flag)
        assert np.array_equal(again.ids, region.ids) and np.array_equal(again.moving, region.moving)


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


def test_each_record_is_fsynced_as_it_is_appended(tmp_path, monkeypatch):
    """One fsync of the record file per appended search (plus the new file's folder)."""
    import os

    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd):
        synced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    path = tmp_path / "searches.jsonl"
    log = RecordLog(path)
    for k in range(3):
        log.append({"version": RECORD_VERSION, "atom": 1, "search": k, "status": "failed"})
        assert synced.count(path.stat().st_ino) == k + 1  # on disk before the next search
        assert path.read_text().count("\n") == k + 1
    assert [r["search"] for r in RecordLog(path).records] == [0, 1, 2]


def test_run_json_is_written_atomically_under_a_unique_name(tmp_path):
    """Through symgnn_ase.outputs: a user's file named like a fixed temporary name is kept."""
    mine = tmp_path / ".run.json.tmp"
    mine.write_text("a user's file")
    write_json_atomic(tmp_path / "run.json", {"a": 1})
    write_json_atomic(tmp_path / "run.json", {"a": 2})
    assert json.loads((tmp_path / "run.json").read_text()) == {"a": 2}
    assert mine.read_text() == "a user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.json.tmp", "run.json"]


def test_an_exchange_of_same_element_atoms_is_no_event():
    """Two Cu atoms trading places (a ring of three too) is the initial configuration again;
    a Cu and a Zr trading places, or a move onto an empty site, is an event."""
    rng = np.random.default_rng(1)
    x0 = rng.uniform(0.0, 10.0, (6, 3))
    x0[1] = x0[0] + [2.5, 0.0, 0.0]
    symbols = np.array(["Cu", "Cu", "Zr", "Cu", "Zr", "Zr"])
    swap = x0.copy()
    swap[[0, 1]] = x0[[1, 0]] + 0.01  # relaxed a little
    assert sorted(exchanged_atoms(x0, swap, symbols, 0.1)) == [0, 1]
    ring = x0.copy()
    ring[[0, 1, 3]] = x0[[1, 3, 0]]
    assert sorted(exchanged_atoms(x0, ring, symbols, 0.1)) == [0, 1, 3]
    mixed = x0.copy()
    mixed[[0, 2]] = x0[[2, 0]]  # Cu <-> Zr: another configuration
    assert exchanged_atoms(x0, mixed, symbols, 0.1) is None
    hop = x0.copy()
    hop[0] += [1.2, 0.3, 0.0]  # a hop to a new place
    assert exchanged_atoms(x0, hop, symbols, 0.1) is None
    assert exchanged_atoms(x0, x0 + 0.01, symbols, 0.1) is None  # nothing moved


class _Region:
    """The fields of a carve-out that Search.push_over reads: 4 moving atoms."""

    symbols = ("Cu", "Cu", "Zr", "Zr")
    moving = np.ones(4, dtype=bool)
    ids = np.array([10, 11, 12, 13])


def _push_over(sides, e_saddle=1.0, **config):
    """Search.push_over with the two minimizations stubbed: ``sides`` = [(x, E), (x, E)]."""
    search = Search(type("Engine", (), {"region": _Region()})(), LabelConfig(**config))
    answers = iter(sides)
    search.minimize = lambda x, *args: (*next(answers), None)
    x0 = np.array([[0.0, 0, 0], [2.5, 0, 0], [0, 3, 0], [3, 3, 0]]).reshape(-1)
    return search.push_over(x0, 0.0, x0, np.eye(12)[0], e_saddle), x0


def test_push_over_rules():
    x0 = np.array([[0.0, 0, 0], [2.5, 0, 0], [0, 3, 0], [3, 3, 0]]).reshape(-1)
    hop = x0.copy()
    hop[:3] += [0.8, 0.4, 0.0]
    accepted, _ = _push_over([(hop, 0.4), (x0 + 0.001, 0.0)])
    assert accepted["status"] == "accepted"
    assert accepted["displacement_atom"] == 10 and accepted["delta_e"] == pytest.approx(0.4)
    # the far side is the initial state with the two Cu atoms traded: no event
    swap = x0.reshape(4, 3)[[1, 0, 2, 3]].reshape(-1)
    exchanged, _ = _push_over([(x0, 0.0), (swap, 0.0)])
    assert exchanged["status"] == "no_event" and "glass ids [10, 11]" in exchanged["reason"]
    # a final state at the saddle's energy (push over a flat shoulder), or above a threshold
    shoulder, _ = _push_over([(hop, 1.0005), (x0, 0.0)])
    assert shoulder["status"] == "no_event" and "not below the saddle" in shoulder["reason"]
    low, _ = _push_over([(hop, 0.97), (x0, 0.0)], min_reverse_barrier=0.05)
    assert low["status"] == "no_event"
    assert _push_over([(hop, 0.97), (x0, 0.0)])[0]["status"] == "accepted"
    assert _push_over([(x0, 0.0), (x0, 0.0)])[0]["status"] == "no_event"
    assert _push_over([(hop, 0.4), (hop, 0.4)])[0]["status"] == "disconnected"
