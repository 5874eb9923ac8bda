"""Which neighbors drive one atom's predicted barrier? (Python API of `symgnn explain`.)

    python examples/explain_atom.py [MODEL.pt] [STRUCTURE]

Without arguments: the bundled CuZr model on a small rattled Cu-Zr crystal. The same
from the command line, on a glass file:

    symgnn explain glass.extxyz --atom 0 --sample 20 -o explain_out
"""

import sys
from pathlib import Path

import numpy as np
from ase.build import bulk

from symgnn_ase.explain import ExplainConfig, Explainer, write_edges_csv
from symgnn_ase.explain.plots import global_view, local_view

model = sys.argv[1] if len(sys.argv) > 1 else None  # None: the bundled model
if len(sys.argv) > 2:
    import ase.io

    atoms = ase.io.read(sys.argv[2])
else:
    rng = np.random.default_rng(0)
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat(3)  # 108 atoms
    atoms.positions += rng.normal(0.0, 0.15, atoms.positions.shape)
    atoms.symbols[rng.random(len(atoms)) < 0.36] = "Zr"

out = Path("examples/out/explain")
out.mkdir(parents=True, exist_ok=True)
explainer = Explainer.from_model(model, atoms, ExplainConfig(epochs=100, top_k=50, seed=0))
expl = explainer.explain(0)
f = expl.fidelity
print(f"atom 0 ({expl.species}): predicted barrier {expl.prediction:.3f} eV")
print(f"  only the top {expl.top_k} edges kept: {f['keep_top_k_eV']:.3f} eV")
print(f"  top {expl.top_k} edges removed:       {f['remove_top_k_eV']:.3f} eV")
print(f"  all edges removed:              {f['empty_eV']:.3f} eV")
for k in expl.order[:5]:
    print(
        f"  edge hop {expl.subgraph.edge_hop[k]}, {expl.distance[k]:.2f} Å from the atom, "
        f"length {expl.edge_length[k]:.2f} Å: importance {expl.importance[k]:.3f}"
    )
write_edges_csv(expl, explainer.graph, out / "atom0_edges.csv")
global_view(expl, explainer.graph, out / "atom0_global.png")
local_view(expl, explainer.graph, out / "atom0_local.png")
print(f"wrote {out}/atom0_edges.csv, atom0_global.png, atom0_local.png")
