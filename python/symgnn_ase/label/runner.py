"""Label atoms of a glass: check inputs, relax, run the searches on workers, write the files.

Work is split by atom: each atom runs its searches one after the other (search k+1 starts
when search k is recorded, so the duplicate rule and the stop at ``searches`` accepted events
are the same in every run), and different atoms run at once on the workers: local processes
(``workers``), or a Dask cluster (``dask``: a scheduler address or a ``distributed.Client``).
Each search is a pure function of its task (the region, the protocol and its seed), computed
in a fresh LAMMPS, so any worker gives the same record.

Output folder:

- ``run.json``: inputs (sha256), protocol, shell width (checked when a run continues);
- ``relaxed.extxyz``: the glass relaxed at fixed cell (step 1, done once);
- ``searches.jsonl``: one record per search, appended as it ends (see ``records.py``);
- ``barriers.extxyz``: the relaxed glass with per-atom ``energy_barrier`` (mean activation
  energy of the accepted events, eV; NaN where none) and ``barrier_events`` (their number);
- ``events.csv``: every accepted event (atom, search, barrier, final energy, displacement);
- ``label.lock``: the advisory lock of the run in progress (its PID), see :mod:`.folder`.

A folder that is not a label run's, or that holds a file the run reads, is refused before
anything is written (:func:`~symgnn_ase.label.folder.check_folder`); a worker process that
dies (killed, out of memory) ends the run with a message saying that the same command
continues it.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import csv
import logging
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.io import file_sha256
from ..outputs import atomic_output, atomic_path
from ..potential.eam import Potential, load_potential
from ..potential.lammps import lammps_box
from .artn import SearchTask, run_search
from .carve import Region, check_box, region_around
from .config import RECORD_VERSION, LabelConfig
from .engine import relax_glass
from .folder import check_folder, lock_folder
from .records import RecordLog, check_manifest, duplicate_of, write_json_atomic
from .selection import parse_selection

logger = logging.getLogger(__name__)

__all__ = ["LabelResult", "label_glass", "load_glass", "summarize"]

_MANIFEST_KEYS = ("version", "glass_sha256", "frame", "potential_sha256", "protocol", "shell")


@dataclass
class LabelResult:
    """What a call of :func:`label_glass` did and what the folder holds now."""

    out_dir: Path
    selected: np.ndarray
    barriers: np.ndarray  # [n_atoms] eV, NaN where no accepted event
    events: np.ndarray  # [n_atoms] accepted events per atom
    status_counts: dict[str, int] = field(default_factory=dict)
    searches_run: int = 0  # by this call (the rest came from the records)
    force_calls_per_search: float = math.nan
    cpu_s_per_search: float = math.nan


def load_glass(path: str | os.PathLike, potential: Potential, frame: int = 0):
    """Read frame ``frame`` of a structure file and check it can be searched."""
    from ..data.io import read_structure

    atoms = read_structure(path, index=str(frame))
    if not np.all(atoms.pbc) or atoms.cell.rank < 3:
        raise ValueError(
            f"{path}: no periodic cell (pbc={atoms.pbc.tolist()}, cell lengths "
            f"{np.round(atoms.cell.lengths(), 3).tolist()} Å); the searches need a glass "
            "periodic in x, y and z"
        )
    lammps_box(atoms.cell.array)  # lower-triangular cell, or a clear error
    missing = sorted(set(atoms.get_chemical_symbols()) - set(potential.elements))
    if missing:
        raise ValueError(
            f"{path}: element(s) {missing} are not in the potential {potential.path.name} "
            f"(it has {list(potential.elements)})"
        )
    from ..potential.quench import check_separation

    check_separation(atoms, str(path))  # overlapping atoms would be relaxed at ~1e13 eV
    return atoms


def label_glass(
    glass: str | os.PathLike,
    potential: str | os.PathLike,
    out: str | os.PathLike,
    atoms: str = "random:10",
    config: LabelConfig | None = None,
    workers: int = 1,
    dask: Any = None,
    frame: int = 0,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> LabelResult:
    """Run (or continue) the searches for the atoms ``atoms`` of ``glass``; see the module doc.

    ``workers``: local worker processes (0: in this process, one search at a time);
    ``dask``: a scheduler address or a ``distributed.Client`` (then ``workers`` is unused).
    """
    cfg = config or LabelConfig()
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    pot = load_potential(potential)
    glass_atoms = load_glass(glass, pot, frame)
    symbols = glass_atoms.get_chemical_symbols()
    selected = parse_selection(atoms, len(glass_atoms), cfg.seed, symbols)
    shell = cfg.shell(pot)
    radius = cfg.active_radius + shell if cfg.carve else cfg.active_radius
    check_box(glass_atoms.cell.array, radius, "carve-out" if cfg.carve else "active sphere")

    if isinstance(dask, (str, os.PathLike)):
        _check_scheduler(str(dask))  # before any work: a wrong address would hang the Client
    out_dir = Path(out)
    check_folder(out_dir, {"glass": Path(glass), "potential": pot.path})
    out_dir.mkdir(parents=True, exist_ok=True)
    with lock_folder(out_dir):
        return _run(
            glass, glass_atoms, pot, out_dir, selected, shell, cfg, workers, dask, frame, on_record
        )


def _run(
    glass: str | os.PathLike,
    glass_atoms,
    pot: Potential,
    out_dir: Path,
    selected: np.ndarray,
    shell: float,
    cfg: LabelConfig,
    workers: int,
    dask: Any,
    frame: int,
    on_record: Callable[[dict[str, Any]], None] | None,
) -> LabelResult:
    """:func:`label_glass` once the inputs are checked and the folder is locked."""
    manifest = {
        "version": RECORD_VERSION,
        "glass": str(Path(glass).resolve()),
        "glass_sha256": file_sha256(glass),
        "frame": frame,
        "n_atoms": len(glass_atoms),
        "potential": str(pot.path),
        "potential_sha256": pot.sha256,
        "elements": list(pot.elements),
        "protocol": cfg.protocol(),
        "shell": shell,
    }
    manifest_path = out_dir / "run.json"
    if manifest_path.exists():
        check_manifest(manifest_path, manifest, _MANIFEST_KEYS)
    else:
        write_json_atomic(manifest_path, manifest)
    relaxed = _relaxed(glass_atoms, pot, cfg, out_dir)

    log = RecordLog(out_dir / "searches.jsonl")
    done = log.by_atom()
    todo = [int(a) for a in selected if _needs_more(done.get(int(a), []), cfg)]
    logger.info(
        "%d atoms selected, %d with searches to run (%d records already in %s)",
        selected.size,
        len(todo),
        len(log.records),
        log.path,
    )
    t0 = time.perf_counter()
    run_now = 0
    if todo:

        def region_of(atom: int) -> Region:
            return region_around(relaxed, atom, cfg, pot)

        try:
            with _executor(workers, dask) as pool:
                run_now = _schedule(pool, todo, region_of, pot, cfg, log, done, on_record)
        except Exception as exc:
            if not _worker_died(exc):
                raise
            raise RuntimeError(
                f"a worker process died (killed, or out of memory?): {type(exc).__name__}; "
                f"{len(log.records)} finished searches are recorded in {log.path}: run the same "
                "command again to continue"
            ) from exc
    logger.info("%d searches run in %.1f s", run_now, time.perf_counter() - t0)
    return summarize(relaxed, log, selected, cfg, out_dir, run_now)


def _needs_more(records: list[dict[str, Any]], cfg: LabelConfig) -> bool:
    accepted = sum(r["status"] == "accepted" for r in records)
    return accepted < cfg.searches and len(records) < cfg.attempts


def _relaxed(glass_atoms, pot: Potential, cfg: LabelConfig, out_dir: Path):
    import ase.io

    path = out_dir / "relaxed.extxyz"
    if path.exists():
        relaxed = ase.io.read(path)
        if len(relaxed) != len(glass_atoms):
            raise ValueError(f"{path} holds {len(relaxed)} atoms, the glass {len(glass_atoms)}")
        if relaxed.get_chemical_symbols() != glass_atoms.get_chemical_symbols() or not np.allclose(
            relaxed.cell.array, glass_atoms.cell.array, rtol=0.0, atol=1e-6
        ):
            raise ValueError(
                f"{path} is not this glass relaxed: its elements or cell differ from the glass's "
                f"(cell {relaxed.cell.lengths().round(4).tolist()} Å, glass "
                f"{glass_atoms.cell.lengths().round(4).tolist()} Å); remove it or choose another "
                "output folder"
            )
        return relaxed
    logger.info("relaxing the glass at fixed cell (%d atoms)", len(glass_atoms))
    bare = glass_atoms.__class__(
        symbols=glass_atoms.get_chemical_symbols(),
        positions=glass_atoms.get_positions(),
        cell=glass_atoms.cell.array,
        pbc=True,
    )
    relaxed = relax_glass(bare, pot, cfg.relax_ftol, cfg.relax_maxiter)
    with atomic_path(path, what="relaxed glass") as tmp:
        ase.io.write(tmp, relaxed, format="extxyz")
    # the searches start from the positions as the file holds them (8 decimals), so that a
    # run continued later starts from the very same ones
    return ase.io.read(path)


def _worker_died(exc: BaseException) -> bool:
    """A local worker process ended abruptly, or Dask gave up on a task whose workers died."""
    return isinstance(exc, cf.process.BrokenProcessPool) or type(exc).__name__ == "KilledWorker"


def _check_scheduler(address: str) -> None:
    """Refuse an address where no Dask scheduler answers the handshake within the connect
    timeout (``distributed.comm.timeouts.connect``).

    ``distributed.Client`` bounds the TCP connection but not the handshake that follows: at an
    address where something else listens (an HTTP server) it waits forever."""
    import asyncio

    try:
        import dask.config
        from dask.utils import parse_timedelta
        from distributed.comm import connect
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"--dask needs the `dask` extra (pip install 'symgnn-ase[dask]'): {exc}"
        ) from None

    timeout = float(parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s"))

    async def handshake() -> None:
        comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout)
        await comm.close()

    # a fresh event loop in its own thread: also when the caller runs one (a notebook)
    with cf.ThreadPoolExecutor(max_workers=1) as probe:
        try:
            probe.submit(asyncio.run, handshake()).result()
        except TimeoutError:
            raise ValueError(
                f"--dask {address}: no Dask scheduler answered the handshake within {timeout:g} s "
                "(something listens there, but not a Dask scheduler?); check the address and "
                "port (distributed.comm.timeouts.connect sets the wait)"
            ) from None
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(
                f"--dask {address}: cannot connect to a Dask scheduler: {exc}"
            ) from None


@contextlib.contextmanager
def _executor(workers: int, dask: Any) -> Iterator[cf.Executor]:
    if dask is not None:
        from distributed import Client

        own = not isinstance(dask, Client)
        client = Client(dask) if own else dask
        try:
            logger.info("running on the Dask cluster %s", client)
            yield client.get_executor(pure=False)
        finally:
            if own:
                client.close()
    elif workers == 0:
        with cf.ThreadPoolExecutor(max_workers=1) as pool:
            yield pool
    else:
        context = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        ) as pool:
            yield pool


def _exit_with_parent(parent: int, interval: float = 1.0) -> None:
    """Worker initializer: a daemon thread ends this worker once the driver ``parent`` is gone.

    A worker blocked on the task queue never sees the driver die (it holds the queue's write
    end itself), so a driver killed alone (``kill PID``, a batch system) would leave its workers
    behind; its search in flight is lost, and is run again on resume."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="symgnn-exit-with-parent", daemon=True).start()


def _schedule(
    pool: cf.Executor,
    atoms: list[int],
    region_of: Callable[[int], Region],
    pot: Potential,
    cfg: LabelConfig,
    log: RecordLog,
    done: dict[int, list[dict[str, Any]]],
    on_record: Callable[[dict[str, Any]], None] | None,
) -> int:
    """One search in flight per atom; record each as it ends, then submit that atom's next."""
    regions: dict[int, Region] = {}
    pending: dict[cf.Future, int] = {}

    def submit(atom: int) -> None:
        if atom not in regions:
            regions[atom] = region_of(atom)
        task = SearchTask(atom, len(done.get(atom, [])), regions[atom], pot, cfg)
        pending[pool.submit(run_search, task)] = atom

    for atom in atoms:
        submit(atom)
    count = 0
    while pending:
        finished, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
        for future in sorted(finished, key=lambda f: pending[f]):
            atom = pending.pop(future)
            record = future.result()
            history = done.setdefault(atom, [])
            if record["status"] == "accepted":
                accepted = [r for r in history if r["status"] == "accepted"]
                repeat = duplicate_of(record, accepted, cfg)
                if repeat is not None:
                    record["status"] = "duplicate"
                    record["reason"] = f"repeats search {repeat}"
            log.append(record)
            history.append(record)
            count += 1
            _log_record(record, history, cfg)
            if on_record is not None:
                on_record(record)
            if _needs_more(history, cfg):
                submit(atom)
            else:
                regions.pop(atom, None)
    return count


def _log_record(record: dict[str, Any], history: list[dict[str, Any]], cfg: LabelConfig) -> None:
    accepted = sum(r["status"] == "accepted" for r in history)
    barrier = record.get("barrier")
    logger.info(
        "atom %d search %d: %s%s (%d force calls, %.1f CPU s); %d/%d accepted",
        record["atom"],
        record["search"],
        record["status"],
        f" {barrier:.3f} eV" if barrier is not None and record["status"] == "accepted" else "",
        record["force_calls"],
        record["cpu_s"],
        accepted,
        cfg.searches,
    )


def summarize(
    relaxed,
    log: RecordLog,
    selected: np.ndarray,
    cfg: LabelConfig,
    out_dir: Path,
    run_now: int = 0,
) -> LabelResult:
    """Write ``barriers.extxyz`` and ``events.csv`` from the records; the numbers of the run."""
    import ase.io

    n = len(relaxed)
    sums, counts = np.zeros(n), np.zeros(n, dtype=np.int64)
    status: dict[str, int] = {}
    for r in log.records:
        status[r["status"]] = status.get(r["status"], 0) + 1
        if r["status"] == "accepted":
            sums[r["atom"]] += r["barrier"]
            counts[r["atom"]] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        barriers = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    labelled = relaxed.copy()
    labelled.arrays["energy_barrier"] = barriers
    labelled.arrays["barrier_events"] = counts
    with atomic_path(out_dir / "barriers.extxyz", what="labels") as tmp:
        ase.io.write(tmp, labelled, format="extxyz")
    _write_events(out_dir / "events.csv", log.records, relaxed.get_chemical_symbols())
    calls = [r["force_calls"] for r in log.records]
    cpu = [r["cpu_s"] for r in log.records]
    return LabelResult(
        out_dir=out_dir,
        selected=selected,
        barriers=barriers,
        events=counts,
        status_counts=dict(sorted(status.items())),
        searches_run=run_now,
        force_calls_per_search=float(np.mean(calls)) if calls else math.nan,
        cpu_s_per_search=float(np.mean(cpu)) if cpu else math.nan,
    )


_EVENT_FIELDS = (
    "atom",
    "element",
    "search",
    "barrier",
    "delta_e",
    "e_initial",
    "e_saddle",
    "e_final",
    "eigenvalue",
    "displacement",
    "displacement_atom",
    "displacement_norm",
    "force_calls",
    "cpu_s",
)


def _write_events(path: Path, records: list[dict[str, Any]], symbols: list[str]) -> None:
    rows = sorted(
        (r for r in records if r["status"] == "accepted"), key=lambda r: (r["atom"], r["search"])
    )
    with atomic_output(path, "w", what="events", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(_EVENT_FIELDS)
        for r in rows:
            r = {**r, "element": symbols[r["atom"]]}
            writer.writerow([_fmt(r.get(k)) for k in _EVENT_FIELDS])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6f}"
    return "" if value is None else str(value)
