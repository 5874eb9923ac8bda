"""Validation Pearson and prediction spread against temperature, for every bundled model.

    .venv/bin/python training/studies/thermal_table.py                       # bundled models
    .venv/bin/python training/studies/thermal_table.py --models runs/x/model.pt --tag x

For each model: the relaxed validation glass (``valid.extxyz``), its LAMMPS-minimized copy
(T = 0, ``CuZr_mm.eam.fs``), NVT snapshots at 300/500/600/700 K (``training/data/thermal``,
made by ``training/make_thermal.sh``; frames of one temperature pooled), and the 600 K
snapshots quenched (minimized) before predicting. Writes ``training/results/thermal.json``
(merged per model), ``thermal.md`` (the MODEL_CARD table) and ``thermal.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "cuzr64"
THERMAL = ROOT / "training" / "data" / "thermal"
OUT = ROOT / "training" / "results"
COLUMNS = ["relaxed", "T0", "300", "500", "600", "700", "600 quenched"]


def frames(name: str):
    import ase.io

    if name == "relaxed":
        return [ase.io.read(DATA / "valid.extxyz")]
    if name == "T0":
        return ase.io.read(THERMAL / "valid_T0.extxyz.gz", index=":")
    path = THERMAL / f"valid_T{name.split()[0]}.extxyz.gz"
    if not path.exists():
        return []
    return ase.io.read(path, index=":")


def evaluate(model_path: str, quenched: dict) -> dict[str, dict[str, float]]:
    from symgnn_ase.calculator import SymGNNCalculator
    from symgnn_ase.potential.eam import lammps_potential_path
    from symgnn_ase.potential.quench import QuenchSettings, quench_lammps
    from symgnn_ase.train.metrics import regression_metrics

    calc = SymGNNCalculator(model_path)
    out = {}
    for col in COLUMNS:
        structures = frames(col)
        if not structures:
            continue
        if col.endswith("quenched"):
            key = col
            if key not in quenched:
                pot = lammps_potential_path("CuZr_mm.eam.fs")
                quenched[key] = [
                    quench_lammps(a, pot, QuenchSettings(fmax=1e-3, max_steps=3000))
                    for a in structures
                ]
            structures = quenched[key]
        preds = [calc.get_property("energy_barriers", a.copy()) for a in structures]
        labels = [a.arrays["energy_barrier"] for a in structures]
        m = regression_metrics(np.concatenate(preds), np.concatenate(labels))
        out[col] = {"pearson": m["pearson"], "pred_std": m["pred_std"], "frames": len(structures)}
    return out


def table(results: dict[str, dict]) -> str:
    head = "| model | " + " | ".join(COLUMNS) + " |"
    lines = [head, "|---|" + "---:|" * len(COLUMNS)]
    for name, res in results.items():
        cells = []
        for col in COLUMNS:
            r = res.get(col)
            cells.append("—" if r is None else f"{r['pearson']:.3f} ({r['pred_std']:.3f})")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(results: dict[str, dict], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    temps = {"T0": 0, "300": 300, "500": 500, "600": 600, "700": 700}
    for name, res in results.items():
        ts = [t for c, t in temps.items() if c in res]
        ax1.plot(ts, [res[c]["pearson"] for c in temps if c in res], "o-", label=name)
        ax2.plot(ts, [res[c]["pred_std"] for c in temps if c in res], "o-", label=name)
        if "relaxed" in res:
            ax1.axhline(res["relaxed"]["pearson"], ls=":", lw=0.8, color=ax1.lines[-1].get_color())
            ax2.axhline(res["relaxed"]["pred_std"], ls=":", lw=0.8, color=ax2.lines[-1].get_color())
    ax1.set(xlabel="temperature (K); 0 = minimized", ylabel="Pearson r (validation glass)")
    ax2.set(xlabel="temperature (K); 0 = minimized", ylabel="std of predictions (eV)")
    ax1.set_title("accuracy during NVT MD (dotted: relaxed glass)", fontsize=9)
    ax2.set_title("prediction spread (dotted: relaxed glass)", fontsize=9)
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", nargs="*", default=None, help="model files (default: bundled)")
    p.add_argument("--tag", nargs="*", default=None, help="names for --models")
    args = p.parse_args(argv)
    from symgnn_ase.format import DEFAULT_MODEL, bundled_models

    if args.models:
        names = args.tag or [Path(m).stem for m in args.models]
        models = dict(zip(names, args.models, strict=True))
    else:
        models = {k: str(v) for k, v in bundled_models().items() if k != DEFAULT_MODEL}
    path = OUT / "thermal.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    quenched: dict = {}
    for name, model in models.items():
        results[name] = evaluate(model, quenched)
        print(name, json.dumps(results[name]))
    from symgnn_ase.outputs import write_text

    write_text(path, json.dumps(results, indent=1) + "\n")
    write_text(OUT / "thermal.md", table(results))
    plot(results, OUT / "thermal.png")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
