"""Whole runs: outputs, resuming after a kill, and the same records on a Dask cluster."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from symgnn_ase.label import label_glass
from symgnn_ase.label.records import comparable

ATOMS = "0,7"
POTENTIAL = "CuZr_mm.eam.fs"


def _records(out: Path) -> dict[tuple[int, int], dict]:
    lines = (out / "searches.jsonl").read_text().splitlines()
    records = [comparable(json.loads(line)) for line in lines]
    keyed = {(r["atom"], r["search"]): r for r in records}
    assert len(keyed) == len(records), "a search was recorded twice"
    return keyed


@pytest.fixture(scope="module")
def reference(tmp_path_factory, small_glass, fast_config):
    """An uninterrupted run on 2 local worker processes."""
    out = tmp_path_factory.mktemp("reference") / "labels"
    result = label_glass(small_glass, POTENTIAL, out, atoms=ATOMS, config=fast_config, workers=2)
    return out, result


def test_a_run_writes_labels_events_and_records(reference, fast_config):
    import ase.io

    out, result = reference
    records = _records(out)
    by_atom: dict[int, list[dict]] = {}
    for (atom, _), record in sorted(records.items()):
        by_atom.setdefault(atom, []).append(record)
    assert sorted(by_atom) == [0, 7]
    labelled = ase.io.read(out / "barriers.extxyz")
    barriers = labelled.arrays["energy_barrier"]
    for atom, history in by_atom.items():
        accepted = [r["barrier"] for r in history if r["status"] == "accepted"]
        # an atom stops at `searches` accepted events or `max_attempts` searches
        assert len(accepted) == fast_config.searches or len(history) == fast_config.attempts
        assert labelled.arrays["barrier_events"][atom] == len(accepted)
        if accepted:
            assert barriers[atom] == pytest.approx(np.mean(accepted))
        else:
            assert np.isnan(barriers[atom])
    others = np.setdiff1d(np.arange(len(labelled)), [0, 7])
    assert np.all(np.isnan(barriers[others]))  # NaN = not labelled
    with open(out / "events.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == sum(r["status"] == "accepted" for r in records.values())
    assert result.status_counts == {
        s: sum(r["status"] == s for r in records.values())
        for s in sorted({r["status"] for r in records.values()})
    }
    assert json.loads((out / "run.json").read_text())["protocol"] == fast_config.protocol()
    # every file was written under a unique temporary name and renamed: none is left over
    # (label.lock is the run's advisory lock, released, the file kept)
    assert sorted(p.name for p in out.iterdir()) == [
        "barriers.extxyz",
        "events.csv",
        "label.lock",
        "relaxed.extxyz",
        "run.json",
        "searches.jsonl",
    ]


def test_a_finished_run_started_again_runs_nothing(reference, small_glass, fast_config):
    out, _ = reference
    before = (out / "searches.jsonl").read_bytes()
    result = label_glass(small_glass, POTENTIAL, out, atoms=ATOMS, config=fast_config, workers=0)
    assert result.searches_run == 0
    assert (out / "searches.jsonl").read_bytes() == before


def test_another_protocol_cannot_continue_a_run(reference, small_glass, fast_config):
    out, _ = reference
    other = dataclasses.replace(fast_config, push_over=0.3)
    with pytest.raises(ValueError, match="push_over: 0.2 there, 0.3 now"):
        label_glass(small_glass, POTENTIAL, out, atoms=ATOMS, config=other, workers=0)


def test_a_stray_relaxed_file_of_another_glass_is_refused(tmp_path, small_glass, fast_config):
    """A relaxed.extxyz left in a new output folder is reused only if it is this glass."""
    import ase.io

    out = tmp_path / "labels"
    out.mkdir()
    other = ase.io.read(small_glass)
    other.set_cell(other.cell.array * 1.01, scale_atoms=True)  # same atoms, another glass
    ase.io.write(out / "relaxed.extxyz", other)
    before = (out / "relaxed.extxyz").read_bytes()
    with pytest.raises(ValueError, match="is not this glass relaxed"):
        label_glass(small_glass, POTENTIAL, out, atoms=ATOMS, config=fast_config, workers=0)
    assert (out / "relaxed.extxyz").read_bytes() == before  # the user's file is untouched


_KILLED_RUN = """
import json, sys
from symgnn_ase.label import LabelConfig, label_glass
glass, out, atoms, config = sys.argv[1:5]
label_glass(glass, "CuZr_mm.eam.fs", out, atoms=atoms, config=LabelConfig(**json.loads(config)),
            workers=1)
"""


def test_a_killed_run_resumes_where_it_stopped(tmp_path, reference, small_glass, fast_config):
    ref_out, _ = reference
    expected = _records(ref_out)
    out = tmp_path / "labels"
    config = json.dumps(dataclasses.asdict(fast_config))
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_RUN, str(small_glass), str(out), ATOMS, config],
        start_new_session=True,  # its worker processes share its process group
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    path = out / "searches.jsonl"
    deadline = time.monotonic() + 600
    try:
        while not (path.exists() and path.read_bytes().count(b"\n") >= 1):
            if proc.poll() is not None:
                pytest.fail(f"the run ended before it was killed: {proc.stderr.read().decode()}")
            if time.monotonic() > deadline:
                pytest.fail("no search finished within 600 s")
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    done_before = path.read_bytes().count(b"\n")
    assert done_before < len(expected), "killed too late to test resuming"

    result = label_glass(small_glass, POTENTIAL, out, atoms=ATOMS, config=fast_config, workers=1)
    assert result.searches_run == len(expected) - done_before  # finished searches skipped
    assert _records(out) == expected


def test_a_dask_cluster_gives_the_same_records(tmp_path, reference, small_glass, fast_config):
    distributed = pytest.importorskip("distributed")
    ref_out, _ = reference
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        out = tmp_path / "labels"
        label_glass(
            small_glass,
            POTENTIAL,
            out,
            atoms=ATOMS,
            config=fast_config,
            dask=cluster.scheduler_address,
        )
    assert _records(out) == _records(ref_out)
    assert _same_events(out, ref_out)


def _same_events(a: Path, b: Path) -> bool:
    """events.csv equal but for the CPU seconds column."""

    def rows(path: Path) -> list[dict]:
        with open(path) as fh:
            return [{k: v for k, v in r.items() if k != "cpu_s"} for r in csv.DictReader(fh)]

    return rows(a / "events.csv") == rows(b / "events.csv")


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_workers_end_when_the_driver_alone_is_killed(tmp_path, small_glass, fast_config):
    config = json.dumps(dataclasses.asdict(fast_config))
    script = _KILLED_RUN.replace("workers=1", "workers=2")
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(small_glass), str(tmp_path / "l"), ATOMS, config],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        workers: list[int] = []
        while len(workers) < 2:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the run did not start its 2 worker processes")
            # the spawn pool's workers; a resource tracker may be among the children too
            workers = [
                p
                for p in _children(proc.pid)
                if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()
                and b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()
            ]
            time.sleep(0.05)
        proc.kill()  # the driver alone, not its process group
        proc.wait()
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in workers), "worker processes outlived their driver"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
