"""`compute symgnn` with the relax protocol (issue 25): the model sees a private copy of the
positions moved K capped steps along the pair style's own forces.

- the simulation is exactly as without the compute: dumps (x, v, f, per-atom energy and
  stress) and thermo (pe, ke, press) bit for bit, with eam/fs and eam/alloy;
- 1, 2 and 4 ranks give the Python protocol (symgnn_ase.potential.relax with the same potential
  in-process, then the model) within 1e-5 eV;
- `relax_steps 0` is a model without relax metadata, bit for bit; the keywords override the file;
- what cannot work is refused with an error naming it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from .helpers import (
    PAIRS,
    check_trajectory_unchanged,
    eam_header,
    glass,
    pair_lines,
    read_dump,
    reference_barriers,
    relaxed_reference,
    wheel_potential,
    write_data,
    write_model_metadata,
)

TOL = 1e-5  # eV, LAMMPS vs Python
PROTOCOL = {"steps": 2, "alpha": 0.12, "cap": 0.3}


@pytest.fixture(scope="module")
def relax_models(tmp_path_factory) -> dict[str, Path]:
    """A tiny model without relax metadata ("plain") and the same with PROTOCOL ("relax")."""
    import torch

    from symgnn_ase.export import export_model
    from symgnn_ase.nn.factory import build_model
    from symgnn_ase.potential.relax import RelaxProtocol, write_relax_metadata
    from symgnn_ase.testing import tiny_config

    folder = tmp_path_factory.mktemp("relax_models")
    plain = folder / "plain.pt"
    # a tiny model whose barriers spread ~10x wider than make_tiny_model's, so that the relax
    # moves them well beyond the float32 noise of the comparisons
    torch.manual_seed(5)
    cfg = tiny_config("symgnn")
    model = build_model(cfg)
    with torch.no_grad():
        model.label_mean.fill_(1.6)
        model.label_std.fill_(3.5)
    export_model(model, plain, cfg.type_names, cfg.r_max, info={"kind": "symgnn", "test": True})
    relax = write_relax_metadata(
        plain,
        folder / "relax.pt",
        RelaxProtocol(**PROTOCOL, potential="CuZr_mm.eam.fs", pair_style="eam/fs"),
    )
    return {"plain": plain, "relax": relax}


# ---------------------------------------------------------------- the trajectory, bit for bit


@pytest.mark.parametrize(
    ("pair", "nprocs", "ensemble"),
    [
        ("eam/fs", 1, "nvt"),
        ("eam/fs", 2, "nvt"),
        ("eam/alloy", 1, "nvt"),
        ("eam/alloy", 2, "nvt"),
        ("eam/fs", 2, "npt"),
        ("eam/fs/opt", 1, "nvt"),
    ],
)
def test_trajectory_is_bit_for_bit(lammps, relax_models, tmp_path, pair, nprocs, ensemble):
    compute = (
        f"compute sg all symgnn {relax_models['relax']} Cu Zr\n"
        "compute red all reduce sum c_sg\n"
        "fix avg all ave/time 10 1 10 c_red file avg.txt\n"
    )
    output, rows, _ = check_trajectory_unchanged(
        lammps, tmp_path, 11, pair_lines(pair), compute, nprocs, ensemble
    )
    assert "relax: 2 step(s)" in output
    # the compute ran (11 evaluations, steps 0..100) and gave barriers
    values = [float(row[1]) for row in rows]
    assert len(values) == 11 and all(np.isfinite(values)) and min(values) > 0


# ---------------------------------------------------------------- ranks vs Python


@pytest.mark.parametrize(
    ("nprocs", "newton", "tilt", "pair"),
    [
        (1, "on", (0.0, 0.0, 0.0), "eam/fs"),
        (2, "on", (0.0, 0.0, 0.0), "eam/fs"),
        (4, "on", (0.0, 0.0, 0.0), "eam/fs"),
        (2, "off", (1.3, -0.7, 0.4), "eam/fs"),
        (2, "on", (0.0, 0.0, 0.0), "eam/alloy"),
    ],
)
def test_ranks_agree_with_python(lammps, relax_models, tmp_path, nprocs, newton, tilt, pair):
    from symgnn_ase.potential.relax import RelaxProtocol

    positions, types, cell = glass(300, seed=12, tilt=tilt)
    write_data(tmp_path / "glass.data", positions, types, cell, triclinic=any(tilt))
    text = eam_header("glass.data", pair_lines(pair), newton=newton)
    text += f"compute sg all symgnn {relax_models['relax']} Cu Zr\n"
    text += f"compute pl all symgnn {relax_models['plain']} Cu Zr\n"
    text += "dump d all custom 1 dump.txt id type x y z c_sg c_pl fx fy fz\n"
    text += "dump_modify d format float %.17g sort id\nrun 0\n"
    res = lammps.run(text, tmp_path, np=nprocs).check()
    assert "relax: 2 step(s) along the pair style's forces, alpha 0.12" in res.output
    frame = read_dump(tmp_path / "dump.txt")[0]
    c = frame.columns
    # the simulation's positions are the data file's (not moved) ...
    pos = np.stack([c["x"], c["y"], c["z"]], 1) - frame.origin
    assert np.allclose(pos, positions, atol=1e-9, rtol=0)
    _, pot, elements = PAIRS[pair]
    ref = relaxed_reference(
        relax_models["relax"], pos, c["type"], frame.cell, RelaxProtocol(**PROTOCOL), pot, elements
    )
    err = float(np.max(np.abs(c["c_sg"] - ref)))
    plain = reference_barriers(relax_models["plain"], pos, c["type"], frame.cell)
    moved = float(np.max(np.abs(ref - plain)))
    print(
        f"{nprocs} rank(s), newton {newton}: |LAMMPS - Python| {err:.3g} eV; relax moves "
        f"barriers by up to {moved:.3g} eV"
    )
    assert moved > 100 * TOL  # the relax matters here, so the comparison can fail
    assert err <= TOL
    assert float(np.max(np.abs(c["c_pl"] - plain))) <= TOL  # the plain model sees x as it is


# ---------------------------------------------------------------- off and overrides


def test_steps_zero_and_overrides(lammps, relax_models, tmp_path):
    from symgnn_ase.potential.relax import RelaxProtocol

    positions, types, cell = glass(300, seed=13)
    write_data(tmp_path / "glass.data", positions, types, cell)
    relax, plain = relax_models["relax"], relax_models["plain"]
    computes = {
        "off": f"{relax} Cu Zr relax_steps 0",
        "plain": f"{plain} Cu Zr",
        "file": f"{relax} Cu Zr",
        "over": f"{relax} Cu Zr relax_steps 1 relax_alpha 0.05 relax_cap 0.1",
        "plain_over": f"{plain} Cu Zr relax_steps 1 relax_alpha 0.05 relax_cap 0.1",
        "steps3": f"{relax} Cu Zr relax_steps 3",
    }
    text = eam_header("glass.data", pair_lines("eam/fs"))
    # a fix force in the step's f: the relax must use the pair style's forces only
    text += "fix push all addforce 0.7 -0.4 0.0\n"
    text += "".join(f"compute {k} all symgnn {v}\n" for k, v in computes.items())
    cols = " ".join(f"c_{k}" for k in computes)
    text += f"dump d all custom 1 dump.txt id type x y z fx {cols}\n"
    text += "dump_modify d format float %.17g sort id\nrun 0\n"
    res = lammps.run(text, tmp_path).check()
    assert "relax: off (relax_steps 0)" in res.output
    assert "relax: off (the model file has no relax metadata" in res.output
    assert "relax: 1 step(s) along the pair style's forces, alpha 0.05 A^2/eV, cap 0.1 A" in (
        res.output
    )
    frame = read_dump(tmp_path / "dump.txt")[0]
    c = frame.columns
    assert abs(float(np.sum(c["fx"])) - 0.7 * len(c["fx"])) < 1e-6  # the push is in f
    # off: exactly the model without relax metadata
    assert np.array_equal(c["c_off"], c["c_plain"])
    # the keywords replace the file's values: the same numbers from either file
    assert np.array_equal(c["c_over"], c["c_plain_over"])
    pos = np.stack([c["x"], c["y"], c["z"]], 1) - frame.origin
    for name, protocol in (
        ("file", RelaxProtocol(**PROTOCOL)),
        ("over", RelaxProtocol(1, 0.05, 0.1)),
        ("steps3", RelaxProtocol(3, PROTOCOL["alpha"], PROTOCOL["cap"])),
    ):
        ref = relaxed_reference(relax, pos, c["type"], frame.cell, protocol)
        err = float(np.max(np.abs(c[f"c_{name}"] - ref)))
        print(f"{name}: |LAMMPS - Python| {err:.3g} eV")
        assert err <= TOL
    assert float(np.max(np.abs(c["c_file"] - c["c_over"]))) > 100 * TOL
    assert float(np.max(np.abs(c["c_file"] - c["c_steps3"]))) > 100 * TOL


# ---------------------------------------------------------------- errors


def _error_run(lammps, tmp_path, model: Path, body: str, keywords: str = "", **header) -> str:
    positions, types, cell = glass(200, seed=14)
    write_data(tmp_path / "glass.data", positions, types, cell)
    text = header.pop("text", None) or eam_header(
        "glass.data", header.pop("pair", pair_lines("eam/fs")), **header
    )
    text += f"compute sg all symgnn {model} Cu Zr {keywords}\n"
    text += "dump d all custom 1 dump.txt id c_sg\n" + body
    return text


@pytest.mark.parametrize(
    ("keywords", "expected"),
    [
        ("relax_steps -1", "relax_steps must be an integer >= 0 (0 turns the relax off), got `-1`"),
        ("relax_steps 2.5", "got `2.5`"),
        ("relax_alpha 0", "relax_alpha must be a finite number > 0 (A^2/eV), got `0`"),
        ("relax_alpha nan", "got `nan`"),
        ("relax_cap abc", "relax_cap must be a finite number > 0 (A per atom and step), got `abc`"),
        ("relax_cap", "got nothing"),
    ],
)
def test_bad_keyword_values(lammps, relax_models, tmp_path, keywords, expected):
    text = _error_run(lammps, tmp_path, relax_models["relax"], "run 0\n", keywords)
    lammps.run(text, tmp_path).check_error(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"steps": "x", "alpha": 0.1, "cap": 0.3}', "entry `steps` must be an integer >= 0"),
        ('{"steps": 2, "alpha": -1, "cap": 0.3}', "entry `alpha` must be a finite number > 0"),
        ('{"steps": 2, "alpha": 0.1}', "lacks `cap`"),
        ('{"steps": 2, "alpha": 0.1, "cap": 0.3, "tmax": 3}', "unknown entry `tmax`"),
        ("[4, 0.12]", "must be a JSON object"),
    ],
)
def test_malformed_metadata(lammps, relax_models, tmp_path, value, expected):
    bad = write_model_metadata(relax_models["plain"], tmp_path / "bad.pt", "relax", value)
    text = _error_run(lammps, tmp_path, bad, "run 0\n")
    out = lammps.run(text, tmp_path).check_error("metadata `relax`", expected)
    assert "bad.pt" in out


def test_no_pair_style(lammps, relax_models, tmp_path):
    text = _error_run(lammps, tmp_path, relax_models["relax"], "run 0\n", pair="")
    lammps.run(text, tmp_path).check_error("no pair style is defined", "relax_steps 0")


def test_pair_compute_off(lammps, relax_models, tmp_path):
    pair = pair_lines("eam/fs") + "pair_modify compute no\n"
    text = _error_run(lammps, tmp_path, relax_models["relax"], "run 0\n", pair=pair)
    lammps.run(text, tmp_path).check_error("`pair_modify compute no`", "eam/fs")


def test_omp_variant_refused(lammps, relax_models, tmp_path):
    # /omp pair styles clear their per-thread force arrays in FixOMP::pre_force, inside the
    # force cycle only: a call from the compute would add stale per-thread forces
    pot = wheel_potential("CuZr_mm.eam.fs")
    pair = f"pair_style eam/fs/omp\npair_coeff * * {pot} Cu Zr\n"
    header = "package omp 1\n" + eam_header("glass.data", pair)
    text = _error_run(lammps, tmp_path, relax_models["relax"], "run 0\n", text=header)
    lammps.run(text, tmp_path).check_error("pair style eam/fs/omp is an accelerator variant")
    # without the relax the /omp style is fine
    text = _error_run(
        lammps, tmp_path, relax_models["relax"], "run 0\n", "relax_steps 0", text=header
    )
    lammps.run(text, tmp_path).check()


def test_bond_style_refused(lammps, relax_models, tmp_path):
    text = """units metal
atom_style bond
boundary p p p
region box block 0 14 0 14 0 14
create_box 2 box bond/types 1 extra/bond/per/atom 1
create_atoms 1 random 120 4 NULL overlap 2.0
create_atoms 2 random 60 5 NULL overlap 2.0
mass * 60.0
pair_style lj/cut 5.0
pair_coeff * * 0.01 2.3
bond_style harmonic
bond_coeff 1 1.0 2.5
neighbor 2.0 bin
"""
    text = _error_run(lammps, tmp_path, relax_models["relax"], "run 0\n", text=text)
    lammps.run(text, tmp_path).check_error("bond_style harmonic", "pair style's forces only")


def test_move_beyond_skin(lammps, relax_models, tmp_path):
    text = _error_run(lammps, tmp_path, relax_models["relax"], "run 0\n", "relax_cap 0.5", skin=0.3)
    out = lammps.run(text, tmp_path).check_error(
        "after relax step", "neighbor lists would miss pairs", "neighbor 2.0 bin", "relax_cap"
    )
    assert re.search(
        r"atom \d+ is [0-9.]+ A from its position at the last neighbor-list build", out
    )


def test_check_no_needs_a_build_this_step(lammps, relax_models, tmp_path):
    body = (
        "neigh_modify every 3 delay 0 check no\n"
        "velocity all create 300 5 loop geom\nfix nve all nve\n"
        "compute red all reduce sum c_sg\nfix avg all ave/time 10 1 10 c_red\nrun 10\n"
    )
    text = _error_run(lammps, tmp_path, relax_models["relax"], body)
    lammps.run(text, tmp_path).check_error("neigh_modify check yes", "relax_steps 0")
