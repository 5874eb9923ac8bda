"""Forward time of each model kind on an 8000-atom glass, graph included and excluded.

Runs the peers side by side in one process (SymGNN, its two ablations, the
equivariant model and the baselines SchNet and descriptor + ridge, at the sizes of
examples/train/*.yaml), the first four with the fused inference operators of
libsymgnn_ops.so and with plain PyTorch ops ("plain"), and prints times and ratios to
SymGNN; also one training step (forward + backward + AMSGrad) each (not for ridge, which
is fitted in closed form). Each model gets the graph of its own r_max (ridge: 10 Å, the
other kinds 5 Å); "+graph s" adds that graph's neighbor-list time.

    python benchmarks/inference.py [--structure FILE] [--repeat 3] [--threads 2] [--cpu-time]

Without ../shared/data/cuzr64 a random glass of 8000 atoms at the same density
is used. Bundled models (python/symgnn_ase/models/*.pt) are timed as shipped, and so are
``--model NAME=FILE`` files (e.g. trained baselines from training/runs/).
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
KINDS = ["symgnn", "raw", "length", "equivariant", "schnet", "ridge"]


CLOCK = time.perf_counter  # --cpu-time: time.process_time


def _timeit(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = CLOCK()
        fn()
        times.append(CLOCK() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structure", default=str(GLASS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-train", action="store_true", help="skip the training-step timing")
    parser.add_argument(
        "--kinds",
        default=",".join(KINDS),
        help="comma-separated model kinds to build and time (default: all)",
    )
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="measure the process's CPU time instead of wall time (with --threads 1: the wall "
        "time on an idle core, steady on a busy machine)",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="also time this exported model file (repeatable)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.cpu_time:
        global CLOCK
        CLOCK = time.process_time

    import ase.io

    if Path(args.structure).exists():
        atoms = ase.io.read(args.structure)
    else:
        from symgnn_ase.testing import random_glass

        print(f"{args.structure} not found: using a random 8000-atom glass")
        atoms = random_glass(8000, seed=0)
    print(f"structure: {len(atoms)} atoms, torch threads: {torch.get_num_threads()}")

    peers: dict[str, tuple[torch.nn.Module, float]] = {}  # name -> (scripted model, r_max)
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise SystemExit(f"unknown kind(s) {unknown}; known: {KINDS}")
    for kind in kinds:
        cfg_path = ROOT / "examples" / "train" / f"{kind}.yaml"
        cfg = ModelConfig.from_dict(yaml.safe_load(cfg_path.read_text())["model"])
        for fused in (True, False):
            torch.manual_seed(0)
            model = build_model(cfg).eval()
            has_fused = any(hasattr(mod, "fused") for mod in model.modules())
            if not fused and not has_fused:
                continue  # no fused operators: the plain variant is the same model
            for mod in model.modules():
                if hasattr(mod, "fused"):
                    mod.fused = mod.fused and fused
            with torchscript_allowed():
                peers[kind if fused else f"{kind} plain"] = (torch.jit.script(model), cfg.r_max)
    files = {f"bundled:{k}": v for k, v in bundled_models().items() if k != "default"}
    files |= dict(spec.split("=", 1) for spec in args.model)
    for name, path in files.items():
        loaded = load_model(path)
        peers[name] = (loaded.module, loaded.r_max)

    names = ["Cu", "Zr"]
    graphs, t_graphs = {}, {}
    for r_max in sorted({r for _, r in peers.values()}):
        t_graphs[r_max] = _timeit(lambda r=r_max: graph_from_atoms(atoms, r, names), args.repeat)
        graphs[r_max] = graph_from_atoms(atoms, r_max, names)
        n_edges = graphs[r_max].edge_index.shape[1]
        print(f"graph r_max {r_max:g} Å (project neighbor list, {n_edges} edges): ", end="")
        print(f"{t_graphs[r_max]:.3f} s")
    print()
    rows = []
    for name, (model, r_max) in peers.items():
        g, t_graph = graphs[r_max], t_graphs[r_max]

        def fwd(model=model, g=g):
            with torch.no_grad():
                model(g.species, g.edge_index, g.edge_vec)

        t_fwd = _timeit(fwd, args.repeat)
        t_step = float("nan")
        if not args.no_train and name in KINDS and name != "ridge":
            kind = name
            cfg_path = ROOT / "examples" / "train" / f"{kind}.yaml"
            cfg = ModelConfig.from_dict(yaml.safe_load(cfg_path.read_text())["model"])
            eager = build_model(cfg).train()
            opt = torch.optim.Adam(eager.parameters(), lr=1e-3, amsgrad=True)
            y = torch.zeros(len(atoms))

            def step(eager=eager, opt=opt, y=y, g=g):
                loss = ((eager(g.species, g.edge_index, g.edge_vec) - y) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()

            t_step = _timeit(step, max(1, args.repeat - 1))
        n_par = sum(p.numel() for p in model.parameters())
        rows.append((name, n_par, t_fwd, t_fwd + t_graph, t_step))
    if args.json:
        import json

        out = {
            "note": f"{len(atoms)} atoms ({Path(args.structure).name}), torch threads "
            f"{torch.get_num_threads()}, median of {args.repeat}, "
            + ("CPU time" if args.cpu_time else "wall time"),
            "rows": [
                {
                    "name": r[0],
                    "params": r[1],
                    "forward_s": r[2],
                    "with_graph_s": r[3],
                    "train_step_s": None if r[4] != r[4] else r[4],
                }
                for r in rows
            ],
            "graph_s": {str(k): v for k, v in t_graphs.items()},
        }
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    base = rows[0][2]
    print(
        f"{'model':22s} {'params':>8s} {'forward s':>10s} {'+graph s':>9s} {'train step s':>13s} {'fwd / ' + rows[0][0][:7]:>13s}"
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
