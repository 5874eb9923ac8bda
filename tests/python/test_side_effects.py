"""The library leaves the process as it found it: no matplotlib backend switch or pyplot state,
torch's thread count restored, a bounded model cache."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from symgnn_ase.runtime import torch_threads
from symgnn_ase.testing import make_tiny_model, random_glass


def test_plots_leave_matplotlib_alone(tmp_path: Path) -> None:
    """The figures are written without pyplot and without ``matplotlib.use``."""
    pytest.importorskip("matplotlib")
    code = f"""
import sys
import matplotlib
import numpy as np

def refuse(*args, **kwargs):
    raise AssertionError("matplotlib.use called by the library")

matplotlib.use = refuse
from symgnn_ase.train.plots import learning_curve, parity_plot
from symgnn_ase.explain.plots import importance_distance_plot

out = {str(tmp_path)!r}
history = [dict(epoch=k, train_loss=1.0 / k, valid_pearson=0.1 * k) for k in range(1, 5)]
learning_curve(history, out + "/curve.png")
rng = np.random.default_rng(0)
parity_plot(rng.random(50), rng.random(50), out + "/parity.png", title="t")
stats = dict(
    n_atoms=2, top_k=5, distance_bins_A=[0.0, 1.0, 2.0], hops=[0, 1],
    by_distance=dict(n_atoms=[2, 2], mean_importance=[0.5, 0.4], sem_importance=[0.1, 0.1],
                     top_k_share=[0.6, 0.4], edge_share=[0.5, 0.5], enrichment=[1.2, 0.8]),
    by_hop=dict(mean_importance=[0.5, 0.4], sem_importance=[0.1, 0.1]),
)
importance_distance_plot(stats, out + "/stats.png")
assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]
    assert (tmp_path / "curve.png").stat().st_size > 1000
    assert (tmp_path / "parity.png").stat().st_size > 1000
    assert (tmp_path / "stats.png").stat().st_size > 1000


def test_torch_threads_restored() -> None:
    before = torch.get_num_threads()
    target = 2 if before != 2 else 3
    with torch_threads(target):
        assert torch.get_num_threads() == target
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(target):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with torch_threads(None), torch_threads(0):
        assert torch.get_num_threads() == before


def test_calculator_restores_threads_and_bounds_its_cache(tmp_path: Path) -> None:
    import symgnn_ase.calculator as calc_mod
    from symgnn_ase import SymGNNCalculator

    atoms = random_glass(30, seed=2)
    before = torch.get_num_threads()
    paths = []
    for k in range(calc_mod.MODEL_CACHE_SIZE + 2):
        path = tmp_path / f"m{k}.pt"
        make_tiny_model(path, "length", seed=k)
        paths.append(path)
    calc_mod._MODEL_CACHE.clear()
    first = SymGNNCalculator(paths[0], n_threads=2 if before != 2 else 3)
    first.get_property("energy_barriers", atoms)
    assert torch.get_num_threads() == before
    for path in paths[1:]:
        SymGNNCalculator(path)
        assert len(calc_mod._MODEL_CACHE) <= calc_mod.MODEL_CACHE_SIZE
    cached = [Path(key[0]).name for key in calc_mod._MODEL_CACHE]
    assert cached == [p.name for p in paths[-calc_mod.MODEL_CACHE_SIZE :]]
    # a cache hit moves the model to the back (least recently used goes first)
    SymGNNCalculator(paths[-calc_mod.MODEL_CACHE_SIZE])
    assert (
        Path(next(reversed(calc_mod._MODEL_CACHE))[0]).name
        == paths[-calc_mod.MODEL_CACHE_SIZE].name
    )
    # the first calculator keeps its model although the cache dropped it
    assert first.get_property("energy_barriers", atoms).shape == (30,)
