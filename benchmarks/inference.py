"""Forward time of each model kind on an 8000-atom glass, graph included and excluded.

Runs the peers side by side in one process (SymGNN, its two ablations and the
equivariant model, at the sizes of examples/train/*.yaml), each with the fused
inference operators of libsymgnn_ops.so and with plain PyTorch ops ("plain"),
and prints times and ratios to SymGNN; also one training step (forward +
backward + AMSGrad) each.

    python benchmarks/inference.py [--structure FILE] [--repeat 3] [--threads 2]

Without ../shared/data/cuzr64 a random glass of 8000 atoms at the same density
is used. Bundled models (python/symgnn_ase/models/*.pt) are timed as shipped.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import yaml

from symgnn_ase.data.graph import graph_from_atoms
from symgnn_ase.export import load_model, torchscript_allowed
from symgnn_ase.format import bundled_models
from symgnn_ase.nn import ModelConfig, build_model

ROOT = Path(__file__).resolve().parents[1]
GLASS = ROOT.parent / "shared" / "data" / "cuzr64" / "train0.extxyz"


def _timeit(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structure", default=str(GLASS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-train", action="store_true", help="skip the training-step timing")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import ase.io

    if Path(args.structure).exists():
        atoms = ase.io.read(args.structure)
    else:
        from symgnn_ase.testing import random_glass

        print(f"{args.structure} not found: using a random 8000-atom glass")
        atoms = random_glass(8000, seed=0)
    print(f"structure: {len(atoms)} atoms, torch threads: {torch.get_num_threads()}")

    peers: dict[str, torch.nn.Module] = {}
    for kind in ["symgnn", "raw", "length", "equivariant"]:
        cfg_path = ROOT / "examples" / "train" / f"{kind}.yaml"
        cfg = ModelConfig.from_dict(yaml.safe_load(cfg_path.read_text())["model"])
        for fused in (True, False):
            torch.manual_seed(0)
            model = build_model(cfg).eval()
            for mod in model.modules():
                if hasattr(mod, "fused"):
                    mod.fused = mod.fused and fused
            with torchscript_allowed():
                peers[kind if fused else f"{kind} plain"] = torch.jit.script(model)
    for name, path in bundled_models().items():
        if name != "default":
            peers[f"bundled:{name}"] = load_model(path).module

    r_max, names = 5.0, ["Cu", "Zr"]
    t_graph = _timeit(lambda: graph_from_atoms(atoms, r_max, names), args.repeat)
    g = graph_from_atoms(atoms, r_max, names)
    print(f"graph (project neighbor list, {g.edge_index.shape[1]} edges): {t_graph:.3f} s\n")
    rows = []
    for name, model in peers.items():

        def fwd(model=model):
            with torch.no_grad():
                model(g.species, g.edge_index, g.edge_vec)

        t_fwd = _timeit(fwd, args.repeat)
        t_step = float("nan")
        if not args.no_train and not name.startswith("bundled") and "plain" not in name:
            kind = name
            cfg_path = ROOT / "examples" / "train" / f"{kind}.yaml"
            cfg = ModelConfig.from_dict(yaml.safe_load(cfg_path.read_text())["model"])
            eager = build_model(cfg).train()
            opt = torch.optim.Adam(eager.parameters(), lr=1e-3, amsgrad=True)
            y = torch.zeros(len(atoms))

            def step(eager=eager, opt=opt, y=y):
                loss = ((eager(g.species, g.edge_index, g.edge_vec) - y) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()

            t_step = _timeit(step, max(1, args.repeat - 1))
        n_par = sum(p.numel() for p in model.parameters())
        rows.append((name, n_par, t_fwd, t_fwd + t_graph, t_step))
    base = rows[0][2]
    print(
        f"{'model':22s} {'params':>8s} {'forward s':>10s} {'+graph s':>9s} {'train step s':>13s} {'fwd / symgnn':>13s}"
    )
    for name, n_par, t_fwd, t_tot, t_step in rows:
        print(
            f"{name:22s} {n_par:8d} {t_fwd:10.3f} {t_tot:9.3f} {t_step:13.3f} {t_fwd / base:13.2f}"
        )
    print(
        f"\nepoch = 6 training steps (train0-5) + one forward on valid; cores: {torch.get_num_threads()}"
    )


if __name__ == "__main__":
    main()
