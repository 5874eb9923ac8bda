"""Print the MODEL_CARD.md tables from the run folders and evaluation JSONs in training/.

    python training/make_tables.py            # the validation table (every run)
    python training/make_tables.py --table1   # Table 1: one row per model kind and ensemble

Reads training/runs/<run>/{summary.json,metrics.csv},
training/results/<run>_valid.json (written by `symgnn evaluate ... --json`) and, for
Table 1's forward times, training/results/inference.json (written by
`python benchmarks/inference.py --cpu-time --json training/results/inference.json`). A kind
without ``training/results/<run>_valid.json`` is printed as "not trained yet" with the size and
forward time of its architecture. Ensembles: training/results/<name>_valid.json and
<name>_cost.json (`python benchmarks/ensemble.py --cpu-time --json ...`).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
KINDS = {
    "symgnn": "SymGNN (learned O(3) distribution, 4 EGAT layers)",
    "raw": "ablation: no symmetrization (raw vectors)",
    "length": "ablation: edge length only (invariant)",
    "equivariant": "equivariant (PaiNN-style, 3 layers), first recipe",
    "equivariant_noise": "equivariant + position noise 0.05 Å (bundled `equivariant`)",
    "length_noise": "edge length + position noise 0.05 Å",
    "length_ema": "edge length + weight averaging (EMA 0.99)",
    "length_md": "edge length, relaxed + thermal frames, noise 0.06 Å (member of `symgnn_md`)",
    "length_md_bn_ft": "edge length, relaxed + thermal frames: 2nd stage of a 52-epoch run (member of `symgnn_md`)",
    "schnet": "baseline: SchNet (3 continuous-filter blocks, species-resolved basis)",
    "ridge": "baseline: descriptor + ridge (closed-form fit)",
    "ridge_raw5": "ridge on the 5 Å graph, three hops of averaging (`ridge_dn`'s descriptor), fitted on raw relaxed glasses",
    "length_res": "edge length on the residual of `ridge_dn` behind the denoiser (relaxed + thermal frames, noise 0.06 Å), scored as ridge + network",
}
# Table 1: the run that stands for each model kind, and the paper's test Pearson of the
# same method (Li et al. 2024, Table 1; None: not in the paper)
TABLE1 = {
    "symgnn": ("SymGNN (learned O(3) distribution), bundled `symgnn`", "symgnn", 0.7859),
    "raw": ("SymGNN without symmetrization (raw vectors)", "raw", 0.2669),
    "length": (
        "EGAT on edge lengths, bundled `symgnn_length` (member of the default)",
        "length",
        0.7264,
    ),
    "equivariant": (
        "equivariant, PaiNN-style (+ position noise), bundled `equivariant`",
        "equivariant_noise",
        None,
    ),
    "schnet": ("SchNet-style continuous-filter network", "schnet", 0.7588),
    "ridge": ("coarse-grained descriptor + ridge", "ridge", None),
}
# the runs inside the formerly bundled `symgnn_md_dn` and `symgnn_md_dns` (learned denoiser,
# removed; their scripts are in training/history/): `symgnn_md`'s members and the force network
# (`symgnn_mdr_dns` adds the ridge `ridge_dn`)
MD_DENOISED_RUNS = (
    "length",
    "equivariant_noise",
    "length_md_bn",
    "length_md_bn_ft",
    "length_md",
    "denoiser",
)
# Table 1's ensembles (`symgnn ensemble`): file training/runs/<name>/ensemble.pt, its member runs,
# validation JSON training/results/<name>_valid.json; forward time from
# training/results/<name>_cost.json (`benchmarks/ensemble.py --cpu-time --json`)
ENSEMBLES = {
    "ensemble_length": (
        "ensemble of the 3 edge-length runs (`length`, `length_noise`, `length_ema`)",
        ["length", "length_noise", "length_ema"],
    ),
    "ensemble_md": (
        "bundled `symgnn_md` (inside the default): `length` + `equivariant_noise` + two edge-length "
        "runs on relaxed and thermal frames (`length_md_bn` then `length_md_bn_ft`; `length_md`)",
        ["length", "equivariant_noise", "length_md_bn", "length_md_bn_ft", "length_md"],
    ),
    "ensemble_kinds": (
        "ensemble of the bundled files' runs (`length`, `symgnn`, `equivariant_noise`)",
        ["length", "symgnn", "equivariant_noise"],
    ),
    "denoised_md": (
        "bundled `symgnn_md_dn` (its denoiser is the default's): `symgnn_md` behind the thermal denoiser "
        "(force network `denoiser`, 4 steps of 0.12 Å²/eV × F)",
        MD_DENOISED_RUNS,
        "denoised",
    ),
    "smoothed_md": (
        "bundled `symgnn_md_dns` (the default before the ridge member): `symgnn_md_dn` with each "
        "member's predictions "
        "averaged over the neighbours within 5 Å (weight exp(−r / 4 Å) × cosine cutoff)",
        MD_DENOISED_RUNS,
        "smoothed",
    ),
    "smoothed_mdr": (
        "the default, bundled `symgnn_mdr_dns`: `symgnn_md`'s four networks and the ridge "
        "`ridge_dn` (5 Å graph, three hops of averaging, fitted on denoised positions) in one "
        "ensemble, behind the same denoiser and smoothing as `symgnn_md_dns`",
        (*MD_DENOISED_RUNS, "ridge_dn"),
        "smoothed",
    ),
}


def _epochs(summary: dict, rows: list) -> str:
    if summary.get("stop_reason") == "closed-form fit":
        return "closed form"
    return f"{summary['best_epoch']} / {len(rows)}"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 600 else f"{seconds / 60:.0f} min"


def _results(name: str) -> dict | None:
    """training/results/<name>_valid.json, or None when that run was not evaluated."""
    path = HERE / "results" / f"{name}_valid.json"
    return json.loads(path.read_text()) if path.exists() else None


def _run(name: str) -> tuple[dict, list]:
    """summary.json and the rows of metrics.csv of training/runs/<name>."""
    run = HERE / "runs" / name
    summary = json.loads((run / "summary.json").read_text())
    return summary, list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))


def _n_parameters(path: Path) -> int | str:
    """``n_parameters`` of a model file's metadata ``info``, read from the archive itself: the
    tables also list files of kinds symgnn no longer loads (``denoised``, before the relax
    protocol)."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        name = next((n for n in zf.namelist() if n.endswith("/extra/info")), None)
        info = json.loads(zf.read(name)) if name else {}
    return info.get("n_parameters", "?")


def _invariance_and_size(res: dict) -> str:
    """The columns rotated Pearson, spread mean / max and parameters of a validation result."""
    rot = res["rotations"]
    path = HERE.parent / res["model"]  # recorded relative to the repository root
    n_par = _n_parameters(path) if path.is_file() else "?"
    return (
        f"{rot['pearson_mean']:.4f} ± {rot['pearson_std']:.4f} | "
        f"{rot['spread_mean_eV']:.2g} / {rot['spread_max_eV']:.2g} | {n_par}"
    )


def main() -> None:
    print(
        "| model | valid Pearson | MAE (eV) | RMSE (eV) | rotated ×8 Pearson | spread mean / max (eV) | params | best epoch / epochs | train time to best |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind, label in KINDS.items():
        res = _results(kind)
        if res is None or not (HERE / "runs" / kind / "summary.json").exists():
            continue
        summary, rows = _run(kind)
        pm = res["pooled"]
        print(
            f"| {label} | {pm['pearson']:.4f} | {pm['mae']:.3f} | {pm['rmse']:.3f} | "
            f"{_invariance_and_size(res)} | "
            f"{_epochs(summary, rows)} | {_minutes(summary['elapsed_to_best'])} |"
        )


def table1() -> None:
    """One row per model kind: accuracy, invariance, size, speed and training cost."""
    bench_path = HERE / "results" / "inference.json"
    bench = json.loads(bench_path.read_text()) if bench_path.exists() else {}
    fwd = {row["name"]: row for row in bench.get("rows", [])}
    print(
        "| model | kind | valid Pearson (pooled) | rotated ×8 Pearson | spread mean / max (eV) "
        "| params | forward, 8000 atoms (s) | epochs (best / run) | training time (to best / run) "
        "| paper, test |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind, (label, run_name, paper) in TABLE1.items():
        res = _results(run_name)
        t = fwd.get(kind, {}).get("forward_s")
        t_fwd = "–" if t is None else f"{t:.2f}"
        if res is None:  # no evaluated run: the architecture's size and speed only
            n_par = fwd.get(kind, {}).get("params", "?")
            print(
                f"| {label} | `{kind}` | not trained yet | – | – | {n_par} | {t_fwd} | – | – | "
                f"{'–' if paper is None else paper} |"
            )
            continue
        summary, rows = _run(run_name)
        times = f"{_minutes(summary['elapsed_to_best'])} / {_minutes(summary['train_seconds'])}"
        print(
            f"| {label} | `{kind}` | {res['pooled']['pearson']:.4f} | "
            f"{_invariance_and_size(res)} | {t_fwd} | "
            f"{_epochs(summary, rows)} | {times} | {'–' if paper is None else paper} |"
        )
    for name, (label, runs, *kind) in ENSEMBLES.items():
        res = _results(name)
        if res is None:
            continue
        summaries = [json.loads((HERE / "runs" / r / "summary.json").read_text()) for r in runs]
        to_best = sum(s["elapsed_to_best"] for s in summaries)
        total = sum(s["train_seconds"] for s in summaries)
        cost_path = HERE / "results" / f"{name}_cost.json"
        t_fwd = "–"
        if cost_path.exists():
            cost = json.loads(cost_path.read_text())
            row = next(r for r in cost["rows"] if r["path"].startswith("forward"))
            t_fwd = f"{row['ensemble_s']:.2f}"
        print(
            f"| {label} | `{kind[0] if kind else 'ensemble'}` | {res['pooled']['pearson']:.4f} | "
            f"{_invariance_and_size(res)} | {t_fwd} | "
            f"{len(runs)} runs | {_minutes(to_best)} / {_minutes(total)} (sum) | – |"
        )
    if bench:
        print(f"\nforward times: {bench.get('note', '')}")


if __name__ == "__main__":
    import sys

    table1() if "--table1" in sys.argv[1:] else main()
