"""Study (issue 27, item 4): the ridge with per-atom energies as inputs when the user's potential
differs from the training one.

    .venv/bin/python training/studies/ridge_pe_potential.py [MODEL [OUT.json]]

MODEL (default training/runs/ridge_pe/ridge_pe.pt) predicts, as the ASE calculator runs it
(its relax protocol moves a copy 4 steps along CuZr_mm.eam.fs's forces first), on the
validation glass and its 300 K / 600 K snapshots (training/data/thermal), with the per-atom
energies it takes as input changed: exact, shifted by +0.1 eV, scaled by 1.05, both, shifted by
+0.5 eV, scaled by 1.2; the relax
forces are the real potential's throughout, so only the inputs differ. Pooled Pearson per file;
also the relax protocol off (exact energies of the unmoved frames). Writes OUT.json (default
training/results/ridge_pe_potential.json; symgnn_pe's: training/results/symgnn_pe_potential.json).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "cuzr64"
FILES = {
    "valid": DATA / "valid.extxyz",
    "valid_T300": ROOT / "training/data/thermal/valid_T300.extxyz.gz",
    "valid_T600": ROOT / "training/data/thermal/valid_T600.extxyz.gz",
}
VARIANTS = {
    "exact": (0.0, 1.0),
    "shift +0.1 eV": (0.1, 1.0),
    "scale 1.05": (0.0, 1.05),
    "scale 1.05, shift +0.1 eV": (0.1, 1.05),
    "shift +0.5 eV": (0.5, 1.0),
    "scale 1.2": (0.0, 1.2),
}
OUT = ROOT / "training" / "results" / "ridge_pe_potential.json"


def perturbed_base(shift: float, scale: float):
    """An ASE calculator: CuZr_mm.eam.fs forces, per-atom energies ``scale * pe + shift``."""
    from ase.calculators.calculator import Calculator, all_changes

    from symgnn_ase.potential.lammps import LammpsPotential

    class Perturbed(Calculator):
        implemented_properties = ["energy", "energies", "forces"]

        def __init__(self) -> None:
            super().__init__()
            self.pot = LammpsPotential("CuZr_mm.eam.fs")

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            _, pe, f = self.pot.evaluate(self.atoms)
            pe = scale * pe + shift
            self.results = {"energy": float(pe.sum()), "energies": pe, "forces": f}

    return Perturbed()


def main() -> int:
    import ase.io

    from symgnn_ase.calculator import SymGNNCalculator
    from symgnn_ase.train.metrics import pearson

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    model = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "training/runs/ridge_pe/ridge_pe.pt")
    frames = {name: ase.io.read(path, ":") for name, path in FILES.items()}
    results: dict[str, dict[str, float]] = {}
    runs = {label: {"base": perturbed_base(*sv)} for label, sv in VARIANTS.items()}
    runs["relax off (exact)"] = {"relax_steps": 0}
    for label, kwargs in runs.items():
        calc = SymGNNCalculator(model, **kwargs)
        row = {}
        for name, atoms_list in frames.items():
            preds = [calc.get_property("energy_barriers", a) for a in atoms_list]
            labels = [a.arrays["energy_barrier"] for a in atoms_list]
            row[name] = pearson(np.concatenate(preds), np.concatenate(labels))
        calc.close()
        results[label] = row
        print(f"{label:28s} " + "  ".join(f"{n} {v:.4f}" for n, v in row.items()), flush=True)
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else OUT
    out.write_text(json.dumps({"model": model, "pearson": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
