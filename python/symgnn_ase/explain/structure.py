"""What ``symgnn explain`` does: explain atoms of one structure and write the results.

For every ``--atom`` it writes ``atom<I>_edges.csv`` (every edge of the atom's
receptive field with its importance), ``atom<I>_global.png`` (the top edges in
3-D) and ``atom<I>_local.png`` (the edges among the 10 nearest atoms); for all
explained atoms (``--atom`` ones and ``--sample N`` random ones) the statistic
``importance_vs_distance.csv``/``.png``; and ``summary.json`` with the model,
settings, predictions, fidelity numbers and times. See ``docs/explain.md``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..outputs import OutputError, atomic_output, check_output, write_text
from .core import ExplainConfig, Explainer, Explanation
from .tables import importance_vs_distance, write_edges_csv

logger = logging.getLogger(__name__)

__all__ = ["explain_structure"]


def _finite(obj: Any) -> Any:
    """NaN/inf as null, so the JSON is standard."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _write_stats_csv(stats: dict[str, Any], path: Path) -> None:
    bins = stats["distance_bins_A"]
    d = stats["by_distance"]
    with atomic_output(path, "w", newline="") as fd:
        w = csv.writer(fd)
        w.writerow(
            [
                "distance_lo_A",
                "distance_hi_A",
                "n_atoms",
                "mean_importance",
                "sem_importance",
                "top_k_share",
                "edge_share",
                "enrichment",
            ]
        )
        for b in range(len(bins) - 1):
            w.writerow(
                [
                    f"{bins[b]:g}",
                    f"{bins[b + 1]:g}",
                    d["n_atoms"][b],
                    *(
                        f"{d[key][b]:.6g}"
                        for key in (
                            "mean_importance",
                            "sem_importance",
                            "top_k_share",
                            "edge_share",
                            "enrichment",
                        )
                    ),
                ]
            )


def _check_outputs(
    outdir: Path, chosen: list[int], plots: bool, inputs: list[str | os.PathLike | None]
) -> None:
    """Every file explain will write, refused before any work (not a folder, link, device or
    FIFO; not an input); the output folder must be a folder (or not exist yet)."""
    if outdir.exists() or outdir.is_symlink():
        if not outdir.is_dir():
            raise OutputError(f"--output-dir {outdir} exists and is not a directory")
    names = ["summary.json", "importance_vs_distance.csv"]
    if plots:
        names.append("importance_vs_distance.png")
    for a in chosen:
        names.append(f"atom{a}_edges.csv")
        if plots:
            names += [f"atom{a}_global.png", f"atom{a}_local.png"]
    for name in names:
        check_output(outdir / name, [p for p in inputs if p is not None], what="explain output")
    held = [name for name in names if (outdir / name).exists()]
    if held and not _earlier_explain(outdir / "summary.json"):
        more = ", ..." if len(held) > 3 else ""
        raise OutputError(
            f"--output-dir {outdir} already holds {', '.join(held[:3])}{more}, not written by "
            "an earlier `symgnn explain` (its summary.json is not one): explain would write "
            "over them; give a new or empty folder"
        )


def _earlier_explain(summary: Path) -> bool:
    """Whether ``summary`` is the summary.json of an earlier explain run (it may be replaced)."""
    try:
        data = json.loads(summary.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "explanations" in data and "objective" in data


@contextlib.contextmanager
def _model_failures(path: Path) -> Iterator[None]:
    """A failure inside the TorchScript model as one line naming the model (no trace)."""
    from ..export import script_error_line

    try:
        yield
    except RuntimeError as exc:
        if "TorchScript interpreter" not in str(exc):
            raise
        raise ValueError(
            f"model {path} failed when run layer by layer (embed/interact/readout, as explain "
            f"and the LAMMPS compute run it): {script_error_line(exc)}"
        ) from None


def explain_structure(
    structure: str,
    output_dir: str | os.PathLike,
    atoms_to_explain: list[int],
    model: str | None = None,
    sample: int = 0,
    config: ExplainConfig | None = None,
    fmt: str | None = None,
    index: str = "-1",
    types: list[str] | None = None,
    device: str = "cpu",
    plots: bool = True,
    out: Any = None,
) -> dict[str, Any]:
    """What ``symgnn explain`` does; returns the summary it writes to ``summary.json``."""
    from ..data.io import read_structure
    from ..data.selection import check_format, check_index
    from ..export import load_model

    out = out if out is not None else sys.stdout
    start_all = time.perf_counter()
    cfg = config or ExplainConfig()
    if isinstance(sample, bool) or sample < 0:
        raise ValueError(f"--sample must be an integer >= 0, got {sample}")
    if not atoms_to_explain and sample == 0:
        raise ValueError("nothing to explain: give --atom I (repeatable) and/or --sample N")
    atoms = read_structure(structure, check_format(fmt), check_index(index), types)
    n_atoms = len(atoms)
    if n_atoms == 0:
        raise ValueError(f"{structure} has no atoms")
    for a in atoms_to_explain:
        if not 0 <= a < n_atoms:
            raise ValueError(
                f"--atom {a} is out of range: {structure} has {n_atoms} atoms "
                f"(valid indices 0 to {n_atoms - 1})"
            )
    chosen = list(dict.fromkeys(int(a) for a in atoms_to_explain))
    rest = np.setdiff1d(np.arange(n_atoms), chosen)
    if sample > rest.size:
        raise ValueError(
            f"--sample {sample} exceeds the {rest.size} atoms left to sample in {structure} "
            f"({n_atoms} atoms, {len(chosen)} given with --atom)"
        )
    sampled = np.random.default_rng(cfg.seed).choice(rest, size=sample, replace=False).tolist()
    outdir = Path(output_dir)
    _check_outputs(outdir, chosen, plots, [structure, model])
    loaded = load_model(model, device=device)
    _check_outputs(outdir, chosen, plots, [structure, loaded.path])
    outdir.mkdir(parents=True, exist_ok=True)
    with _model_failures(loaded.path):
        explainer = Explainer.from_model(loaded, atoms, cfg, device=device)
    if plots:
        from .plots import global_view, importance_distance_plot, local_view
    explanations: list[Explanation] = []
    records: list[dict[str, Any]] = []
    for a in chosen + [int(s) for s in sampled]:
        with _model_failures(loaded.path):
            expl = explainer.explain(a)
        explanations.append(expl)
        rec = expl.summary() | {"sampled": a not in chosen}
        if a in chosen:
            files = [write_edges_csv(expl, explainer.graph, outdir / f"atom{a}_edges.csv")]
            if plots:
                files.append(global_view(expl, explainer.graph, outdir / f"atom{a}_global.png"))
                files.append(local_view(expl, explainer.graph, outdir / f"atom{a}_local.png"))
            rec["files"] = [f.name for f in files]
            f = expl.fidelity
            print(
                f"atom {a} ({expl.species}): prediction {expl.prediction:.4f} eV; "
                f"top-{expl.top_k} only {f['keep_top_k_eV']:.4f} eV, top-{expl.top_k} removed "
                f"{f['remove_top_k_eV']:.4f} eV; {expl.subgraph.n_edges} edges, "
                f"{expl.time_s:.1f} s",
                file=out,
            )
        records.append(rec)
    stats = None
    if any(x.subgraph.n_edges for x in explanations):
        stats = importance_vs_distance(explanations)
        _write_stats_csv(stats, outdir / "importance_vs_distance.csv")
        if plots:
            importance_distance_plot(stats, outdir / "importance_vs_distance.png")
    total = time.perf_counter() - start_all
    times = [x.time_s for x in explanations]
    summary = {
        "model": {
            "path": str(loaded.path),
            "kind": loaded.info.get("kind"),
            "r_max": loaded.r_max,
            "n_layers": loaded.n_layers,
            "type_names": loaded.type_names,
            "validation": loaded.info.get("validation"),
        },
        "structure": {"path": str(structure), "index": index, "n_atoms": n_atoms},
        "settings": cfg.to_dict() | {"sample": sample, "device": device},
        "objective": (
            "((f_atom(mask) - f_atom) / scale_eV)^2 + size_weight * sum(mask) "
            "+ entropy_weight * mean(binary entropy(mask)); mask = sigmoid(logits) multiplies "
            "each edge's attention/message in every layer"
        ),
        "explanations": records,
        "importance_vs_distance": stats,
        "time_s": {
            "total": total,
            "setup": explainer.setup_time_s,
            "per_atom_mean": float(np.mean(times)),
            "per_atom_max": float(np.max(times)),
            "per_atom_cpu_mean": float(np.mean([x.cpu_time_s for x in explanations])),
        },
    }
    write_text(outdir / "summary.json", json.dumps(_finite(summary), indent=2) + "\n")
    print(
        f"explained {len(explanations)} atom(s) in {total:.1f} s "
        f"({float(np.mean(times)):.1f} s per atom after {explainer.setup_time_s:.1f} s setup); "
        f"wrote {outdir}",
        file=out,
    )
    return summary
