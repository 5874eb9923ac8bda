"""Per-atom energy barriers of a CuZr structure with the bundled model (README snippet)."""

from ase.build import bulk

from symgnn_ase import SymGNNCalculator

atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat(3)  # 108 atoms; or ase.io.read("glass.xyz")
atoms.symbols[::3] = "Zr"  # a Cu-Zr alloy
atoms.calc = SymGNNCalculator()  # bundled CuZr model; SymGNNCalculator("model.pt") for another
barriers = atoms.calc.get_property("energy_barriers", atoms)  # float64 [N], eV
print(f"mean barrier {barriers.mean():.3f} eV, range {barriers.min():.3f}-{barriers.max():.3f} eV")
