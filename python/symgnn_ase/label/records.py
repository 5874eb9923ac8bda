"""Append-only search records (JSON lines), the run manifest, and the duplicate rule.

Every search, accepted or not, is one line of ``searches.jsonl`` written with one ``write`` and
an ``fsync`` as soon as it ends, so a killed run loses at most the searches in flight. A run
started again reads the file, drops a torn last line (a kill mid-write), and skips the searches
it holds; ``run.json`` makes sure the records came from the same glass, potential and protocol.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..outputs import fsync_dir, write_text
from .config import RECORD_VERSION, LabelConfig

logger = logging.getLogger(__name__)

__all__ = [
    "TIMING_KEYS",
    "RecordLog",
    "check_manifest",
    "comparable",
    "duplicate_of",
    "write_json_atomic",
]

# fields that differ between two runs of the same searches (the machine, not the search)
TIMING_KEYS = ("cpu_s", "wall_s")


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A record without its timing fields."""
    return {k: v for k, v in record.items() if k not in TIMING_KEYS}


class RecordLog:
    """``searches.jsonl``: read once, then appended to, one fsync'ed line per search."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.records: list[dict[str, Any]] = []
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        raw = self.path.read_bytes()
        if raw and not raw.endswith(b"\n"):
            cut = raw.rfind(b"\n") + 1
            logger.warning(
                "%s: dropped a torn last record (%d bytes, the run was killed mid-write)",
                self.path,
                len(raw) - cut,
            )
            with open(self.path, "r+b") as fh:
                fh.truncate(cut)
                fh.flush()
                os.fsync(fh.fileno())
            raw = raw[:cut]
        for number, line in enumerate(raw.decode().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{self.path}:{number}: not a JSON record ({exc})") from None
            if record.get("version") != RECORD_VERSION:
                raise ValueError(
                    f"{self.path}:{number}: record version {record.get('version')!r}, this "
                    f"symgnn writes version {RECORD_VERSION}; use a new output folder"
                )
            self.records.append(record)

    def append(self, record: dict[str, Any]) -> None:
        """Append one record as one line, flushed and fsync'ed before this returns."""
        data = (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode()
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:  # os.write may write less than asked
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_dir(self.path.parent)  # the new file's directory entry
        self.records.append(record)

    def by_atom(self) -> dict[int, list[dict[str, Any]]]:
        """Records per atom, in search order; the searches of an atom must be 0..k-1."""
        out: dict[int, list[dict[str, Any]]] = {}
        for record in self.records:
            out.setdefault(int(record["atom"]), []).append(record)
        for atom, records in out.items():
            records.sort(key=lambda r: int(r["search"]))
            numbers = [int(r["search"]) for r in records]
            if numbers != list(range(len(numbers))):
                raise ValueError(
                    f"{self.path}: atom {atom} has searches {numbers}, expected 0..{len(numbers) - 1}"
                    " (the file was edited or two runs wrote to it at once)"
                )
        return out


def duplicate_of(
    record: dict[str, Any], accepted: Iterable[dict[str, Any]], cfg: LabelConfig
) -> int | None:
    """The search number of an earlier accepted event that ``record`` repeats, if any."""
    moves = _moves(record)
    for earlier in accepted:
        if abs(earlier["e_saddle"] - record["e_saddle"]) >= cfg.duplicate_energy_tol:
            continue
        other = _moves(earlier)
        worst = 0.0
        for atom in set(moves) | set(other):
            a, b = moves.get(atom, (0.0, 0.0, 0.0)), other.get(atom, (0.0, 0.0, 0.0))
            worst = max(worst, math.dist(a, b))
        if worst <= cfg.duplicate_position_tol:
            return int(earlier["search"])
    return None


def _moves(record: dict[str, Any]) -> dict[int, tuple[float, float, float]]:
    return {int(m[0]): (m[1], m[2], m[3]) for m in record.get("saddle_moves", [])}


def write_json_atomic(path: Path, data: Any) -> None:
    """``path`` as indented JSON through :func:`symgnn_ase.outputs.write_text` (a temporary
    file of a unique name, fsync, atomic rename)."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def check_manifest(path: Path, manifest: dict[str, Any], keys: Sequence[str]) -> None:
    """Refuse to continue a run whose ``run.json`` differs in any of ``keys``."""
    old = json.loads(path.read_text())
    for key in keys:
        if key not in old and key not in manifest:
            continue
        a, b = old.get(key), manifest.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            detail = "; ".join(f"{k}: {a.get(k)!r} there, {b.get(k)!r} now" for k in diff)
        else:
            detail = f"{a!r} there, {b!r} now"
        raise ValueError(
            f"{path.parent} holds searches of another run ({key} differs: {detail}); "
            "use a new output folder, or the same inputs and protocol to continue it"
        )
