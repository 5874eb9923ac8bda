"""`compute symgnn` with the baseline kinds: SchNet (``schnet``) and the descriptor + ridge
model (``ridge``, two layers on a 10 Å graph: radial densities, then their averages, or more
layers on a 5 Å graph: averages of averages). The
compute runs them layer by layer with ghost-atom exchange and must give, on any number of MPI
ranks, the barriers of the same model evaluated in Python on the whole periodic structure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from .helpers import frame_reference, glass, input_header, read_dump, write_data

TOL = 1e-5  # eV


@pytest.fixture(scope="module")
def baseline_models(tmp_path_factory) -> dict[str, Path]:
    from symgnn_ase.data.descriptors import descriptor_config
    from symgnn_ase.export import export_model
    from symgnn_ase.nn import build_model
    from symgnn_ase.testing import make_tiny_model

    folder = tmp_path_factory.mktemp("baselines")
    out = {}
    for kind in ("schnet", "ridge"):
        out[kind] = folder / f"tiny_{kind}.pt"
        make_tiny_model(out[kind], kind=kind, seed=5)
    # three hops of averaging on the 5 Å graph, in float32 (how it joins the default)
    out["ridge_hops"] = folder / "tiny_ridge_hops.pt"
    make_tiny_model(out["ridge_hops"], kind="ridge", seed=7, n_layers=4, dtype="float32")
    # the shipped descriptor's geometry (r_max 10 Å, densities within 5.5 Å), random readout
    torch.manual_seed(6)
    cfg = descriptor_config()
    model = build_model(cfg)
    with torch.no_grad():
        model.label_mean.fill_(1.6)
        model.label_std.fill_(0.35)
    out["descriptor"] = folder / "descriptor.pt"
    export_model(model, out["descriptor"], cfg.type_names, cfg.r_max, info={"kind": "ridge"})
    return out


def _run_and_check(lammps, models, tmp_path, nprocs, n=300, seed=1, tilt=(0.0, 0.0, 0.0)):
    positions, types, cell = glass(n, seed=seed, tilt=tilt)
    write_data(tmp_path / "glass.data", positions, types, cell)
    text = input_header("glass.data", "pair_style zero 2.0\npair_coeff * *")
    text += "".join(f"compute {k} all symgnn {p} Cu Zr\n" for k, p in models.items())
    cols = " ".join(f"c_{k}" for k in models)
    text += f"dump d all custom 1 dump.txt id type x y z {cols}\n"
    text += "dump_modify d format float %.17g sort id\nrun 0\n"
    res = lammps.run(text, tmp_path, np=nprocs).check()
    assert "raising the ghost-atom cutoff" in res.output
    (frame,) = read_dump(tmp_path / "dump.txt")
    out = {}
    for name, path in models.items():
        got = frame.columns[f"c_{name}"]
        err = float(np.max(np.abs(got - frame_reference(path, frame))))
        print(f"{name}, {nprocs} rank(s): max |LAMMPS - Python| = {err:.3g} eV")
        assert err <= TOL, f"{name}: max |LAMMPS - Python| = {err:.3g} eV"
        assert np.ptp(got) > 1e-3, f"{name}: barriers do not vary between atoms"
        out[name] = got
    return out


@pytest.mark.parametrize("nprocs", [1, 2, 4])
def test_baselines_match_python_on_any_rank_count(lammps, baseline_models, tmp_path, nprocs):
    models = {k: baseline_models[k] for k in ("schnet", "ridge", "ridge_hops")}
    _run_and_check(lammps, models, tmp_path, nprocs)


@pytest.mark.parametrize("nprocs", [1, 2])
def test_descriptor_with_10_angstrom_averaging(lammps, baseline_models, tmp_path, nprocs):
    """r_max 10 Å: ghosts reach 11 Å beyond each subdomain, densities of ghost atoms come from
    their owners after layer 0; a triclinic box of ~700 atoms."""
    models = {"d": baseline_models["descriptor"]}
    _run_and_check(lammps, models, tmp_path, nprocs, n=700, seed=3, tilt=(2.1, -1.3, 0.9))
