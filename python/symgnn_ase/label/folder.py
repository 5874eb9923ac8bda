"""The output folder of a label run: what may be in it before a run starts, and its lock.

A label run writes several files into one folder (:data:`OUTPUT_FILES`), so before anything is
written :func:`check_folder` refuses

- a folder path that is a file (the glass itself, say);
- a file the run reads (the glass, the potential) that is one of the files it writes there
  (``symgnn label DIR/barriers.extxyz -o DIR`` would overwrite the glass being labelled);
- a folder holding files of the names it writes, but no ``run.json`` of a label run (they are
  not this run's to replace), or a ``run.json`` that is not a label run's manifest;
- any of those names that is not a regular file (a directory, a symbolic link).

``relaxed.extxyz`` alone is allowed in a new folder: it is read, never replaced, and used only
if it is the glass relaxed (see :mod:`.runner`).

:func:`lock_folder` holds an advisory lock (``fcntl.flock``) on ``label.lock`` in the folder for
the whole run, with the driver's PID written in it, so that a second run into the same folder
is refused while the first runs (two runs would record the same searches twice). The lock goes
with the process (it is released however the driver ends); the file stays.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..outputs import check_output

__all__ = ["LOCK_FILE", "OUTPUT_FILES", "check_folder", "lock_folder"]

#: what a label run writes into its folder (run.json first, relaxed.extxyz once)
OUTPUT_FILES = ("run.json", "relaxed.extxyz", "searches.jsonl", "barriers.extxyz", "events.csv")
#: the advisory lock of a running label run (holds its PID)
LOCK_FILE = "label.lock"
# files that only a label run can have put there: refused in a folder without run.json
_RUN_ONLY = ("searches.jsonl", "barriers.extxyz", "events.csv")


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_folder(out_dir: Path, reads: Mapping[str, Path]) -> None:
    """Refuse ``out_dir`` as a label run's folder (see the module doc) before anything is
    written; ``reads`` names each file the run reads (``{"glass": path, ...}``)."""
    names = ", ".join(OUTPUT_FILES)
    if out_dir.exists() and not out_dir.is_dir():
        what = next(
            (f" (it is the {w} being read)" for w, p in reads.items() if _same(out_dir, p)), ""
        )
        raise ValueError(
            f"output folder {out_dir} is a file, not a folder{what}: symgnn label writes "
            f"{names} into a folder; choose another output folder"
        )
    for name in (*OUTPUT_FILES, LOCK_FILE):
        target = out_dir / name
        for what, path in reads.items():
            if _same(target, path):
                raise ValueError(
                    f"output folder {out_dir}: the {what} {path} is the run's {name} there, "
                    f"which labelling writes over; choose another output folder (or copy the "
                    f"{what} out of it first)"
                )
        check_output(target, reads.values(), what="label output")  # not a link or a folder
    if not out_dir.is_dir():
        return
    manifest = out_dir / "run.json"
    if manifest.exists():
        try:
            data = json.loads(manifest.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            data = exc
        if not (isinstance(data, dict) and "glass_sha256" in data and "protocol" in data):
            raise ValueError(
                f"output folder {out_dir}: its run.json is not the manifest of a symgnn label "
                "run (it would be written over); choose another output folder"
            )
        return
    present = [name for name in _RUN_ONLY if (out_dir / name).exists()]
    lock = out_dir / LOCK_FILE
    if lock.exists() and not lock.read_bytes().strip().isdigit():
        present.append(LOCK_FILE)
    if present:
        raise ValueError(
            f"output folder {out_dir} holds {', '.join(present)} but no run.json of a label "
            "run: they are not this run's to replace; choose another output folder, or remove "
            "them"
        )


@contextlib.contextmanager
def lock_folder(out_dir: Path) -> Iterator[None]:
    """Hold the folder's advisory lock while the block runs; a second holder is refused
    with a ValueError naming the folder and the PID that holds it."""
    path = out_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by worker processes
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise ValueError(
                f"output folder {out_dir} is in use by another symgnn label run (PID {holder}, "
                f"lock {path}): wait for it to end, or choose another output folder"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
