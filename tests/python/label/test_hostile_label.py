"""`symgnn label` given hostile inputs (issue 24, item 7): nothing a user has is written over,
no hang, and one line naming the culprit."""

from __future__ import annotations

import hashlib
import http.server
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import ase.io
import pytest

from symgnn_ase.cli import main
from symgnn_ase.label import label_glass
from symgnn_ase.label.folder import LOCK_FILE, lock_folder

POTENTIAL = "CuZr_mm.eam.fs"
FAST_SET = ["--set", "active_radius=3.7", "--set", "shell_width=4.0", "--set", "basin_max_steps=40"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("symgnn label: error: "), err
    return lines[0]


def _label(glass: Path, out: Path, *extra: str) -> list[str]:
    return ["label", str(glass), "--potential", POTENTIAL, *FAST_SET, "-o", str(out), *extra]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, small_glass, fast_config) -> Path:
    """A finished run of one atom (its folder holds every output file)."""
    out = tmp_path_factory.mktemp("finished") / "labels"
    cfg = fast_config.__class__(**{**fast_config.__dict__, "searches": 1, "max_attempts": 1})
    label_glass(small_glass, POTENTIAL, out, atoms="7", config=cfg, workers=0)
    return out


@pytest.mark.parametrize("name", ["barriers.extxyz", "relaxed.extxyz"])
def test_the_glass_inside_the_output_folder_is_refused(finished, tmp_path, capsys, name):
    """`symgnn label DIR/barriers.extxyz -o DIR` would write over the glass being labelled."""
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    glass = out / name
    before = {p.name: _sha(p) for p in out.iterdir()}
    assert main([*_label(glass, out, "--atoms", "7", "--workers", "0")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"output folder {out}: the glass {glass} is the run's {name} there" in line
    assert {p.name: _sha(p) for p in out.iterdir()} == before  # nothing touched


def test_an_output_that_is_the_glass_is_refused(small_glass, tmp_path, capsys):
    glass = tmp_path / "glass.extxyz"
    shutil.copy(small_glass, glass)
    before = _sha(glass)
    assert main([*_label(glass, glass, "--workers", "0")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"output folder {glass} is a file, not a folder (it is the glass being read)" in line
    assert "Errno" not in line
    assert _sha(glass) == before


def test_a_folder_with_files_of_another_kind_is_refused(small_glass, fast_config, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "events.csv").write_text("my own table\n")
    with pytest.raises(ValueError, match="holds events.csv but no run.json of a label run"):
        label_glass(small_glass, POTENTIAL, out, atoms="7", config=fast_config, workers=0)
    (out / "events.csv").unlink()
    (out / "run.json").write_text(json.dumps({"epochs": 3}))  # another tool's run.json
    with pytest.raises(ValueError, match="its run.json is not the manifest of a symgnn label"):
        label_glass(small_glass, POTENTIAL, out, atoms="7", config=fast_config, workers=0)
    assert sorted(p.name for p in out.iterdir()) == ["run.json"]
    assert json.loads((out / "run.json").read_text()) == {"epochs": 3}


_HOLD_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.pwrite(fd, f"{os.getpid()}\\n".encode(), 0)
print("locked", flush=True)
sys.stdin.read()  # until the test closes stdin
"""


def test_a_second_run_into_a_busy_folder_is_refused(finished, small_glass, fast_config, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    before = _sha(out / "searches.jsonl")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(out / LOCK_FILE)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        message = f"output folder {out} is in use by another symgnn label run (PID {holder.pid}"
        with pytest.raises(ValueError, match=re.escape(message)):
            label_glass(small_glass, POTENTIAL, out, atoms="7,8", config=fast_config, workers=0)
    finally:
        holder.stdin.close()
        holder.stdout.close()
        holder.wait(timeout=60)
    assert _sha(out / "searches.jsonl") == before  # the refused run wrote nothing
    with lock_folder(out):  # released by the holder's exit
        pass


def test_the_lock_is_released_when_a_run_ends(finished, small_glass, fast_config):
    cfg = fast_config.__class__(**{**fast_config.__dict__, "searches": 1, "max_attempts": 1})
    label_glass(small_glass, POTENTIAL, finished, atoms="7", config=cfg, workers=0)
    with lock_folder(finished):
        pass
    with pytest.raises(ValueError, match="in use by another symgnn label run"):
        with lock_folder(finished), lock_folder(finished):
            pass


def test_overlapping_atoms_are_refused_before_the_relaxation(small_glass, fast_config, tmp_path):
    atoms = ase.io.read(small_glass)
    atoms.positions[12] = atoms.positions[5] + [0.1, 0.0, 0.0]
    glass = tmp_path / "overlap.extxyz"
    ase.io.write(glass, atoms)
    out = tmp_path / "out"
    message = f"{glass}: atoms 5 and 12 are 0.1 Å apart (closer than 0.5 Å)"
    with pytest.raises(ValueError, match=re.escape(message)):
        label_glass(glass, POTENTIAL, out, atoms="7", config=fast_config, workers=0)
    assert not out.exists()


def test_a_killed_worker_says_how_to_continue(small_glass, fast_config, tmp_path):
    out = tmp_path / "labels"

    def kill_the_workers(record: dict) -> None:
        for child in multiprocessing.active_children():
            os.kill(child.pid, signal.SIGKILL)

    with pytest.raises(RuntimeError, match="run the same command again to continue") as info:
        label_glass(
            small_glass,
            POTENTIAL,
            out,
            atoms="0,7",
            config=fast_config,
            workers=1,
            on_record=kill_the_workers,
        )
    assert "a worker process died (killed, or out of memory?): BrokenProcessPool" in str(info.value)
    recorded = (out / "searches.jsonl").read_text().count("\n")
    assert recorded >= 1
    result = label_glass(small_glass, POTENTIAL, out, atoms="0,7", config=fast_config, workers=0)
    assert result.searches_run == (out / "searches.jsonl").read_text().count("\n") - recorded


class _Http(http.server.BaseHTTPRequestHandler):
    timeout = 30  # a handler thread never outlives the test by long

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_dask_at_an_http_server_fails_with_a_timeout(small_glass, fast_config, tmp_path):
    """Something that is not a Dask scheduler listens at the address: a clear error, no hang."""
    pytest.importorskip("distributed")
    import dask.config

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Http)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    address = f"tcp://127.0.0.1:{server.server_address[1]}"
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
                label_glass(small_glass, POTENTIAL, tmp_path / "o", "7", fast_config, dask=address)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    try:
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(timeout=120)
        assert not worker.is_alive(), f"label_glass still waits on {address} after 120 s"
    finally:
        server.shutdown()
        server.server_close()
    assert isinstance(outcome[0], ValueError), outcome
    assert str(outcome[0]).startswith(
        f"--dask {address}: no Dask scheduler answered the handshake within 2 s"
    )
    assert not (tmp_path / "o").exists()  # refused before any work


def test_workers_with_dask_is_refused(small_glass, tmp_path, capsys):
    argv = _label(small_glass, tmp_path / "o", "--dask", "tcp://127.0.0.1:1", "--workers", "2")
    assert main(argv) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "--workers 2 is not used with --dask tcp://127.0.0.1:1" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--searches", "2", "--set", "searches=3"],
            "--searches 2 conflicts with --set searches=3",
        ),
        (["--set", "seed=1", "--seed", "4"], "--seed 4 conflicts with --set seed=1"),
        (
            ["--max-attempts", "5", "--set", "max_attempts=9"],
            "--max-attempts 5 conflicts with --set max_attempts=9",
        ),
    ],
)
def test_an_option_and_set_of_the_same_key_must_agree(
    small_glass, tmp_path, capsys, extra, message
):
    assert main([*_label(small_glass, tmp_path / "o", "--workers", "0", *extra)]) == 2
    assert message in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists()
