"""`compute symgnn` in setups users have and the other tests do not: two OpenMP threads per MPI
rank (every other LAMMPS test pins one), a data file whose type order differs from the model's
(`symgnn MODEL Zr Cu`), and several LAMMPS types mapped to one element."""

from __future__ import annotations

import numpy as np
import pytest

from .helpers import frame_atoms, frame_reference, glass, input_header, read_dump, write_data

TOL = 1e-5  # eV, LAMMPS against the model evaluated in Python on the whole periodic structure


def _dump(compute: str) -> str:
    return (
        compute
        + "\ndump d all custom 1 dump.txt id type x y z c_b\n"
        + "dump_modify d format float %.17g sort id\nrun 0\n"
    )


def _run_dump(lammps, cwd, data: str, compute_args: str):
    """`compute b all symgnn <compute_args>` on the data file ``data``, dumped: the run's result
    and the dumped frame."""
    text = input_header(data) + _dump(f"compute b all symgnn {compute_args}")
    res = lammps.run(text, cwd).check()
    (frame,) = read_dump(cwd / "dump.txt")
    return res, frame


def _worst(frame, model, type_names) -> float:
    ref = frame_reference(model, frame, type_names)
    return float(np.max(np.abs(frame.columns["c_b"] - ref)))


@pytest.mark.parametrize("nprocs", [1, 2])
def test_two_openmp_threads_per_rank(lammps, tiny_models, tmp_path, nprocs):
    """OMP_NUM_THREADS=2: torch and the neighbor list use 2 threads per rank; same barriers as
    Python, and within the promise of the 1-thread run (1e-5 eV across thread counts;
    docs/contracts.md, Determinism)."""
    positions, types, cell = glass(300, seed=11)
    write_data(tmp_path / "glass.data", positions, types, cell)
    results = {}
    for kind, model in tiny_models.items():
        for threads in ("1", "2"):
            text = input_header("glass.data") + _dump(f"compute b all symgnn {model} Cu Zr")
            env = {"OMP_NUM_THREADS": threads, "SYMGNN_LAMMPS_DEBUG": "1"}
            res = lammps.run(text, tmp_path, np=nprocs, env=env).check()
            assert f"symgnn: {threads} torch thread(s) per MPI rank" in res.output
            (frame,) = read_dump(tmp_path / "dump.txt")
            err = _worst(frame, model, ["Cu", "Zr"])
            print(f"{kind}, {nprocs} rank(s), {threads} thread(s): max |LAMMPS - Python| {err:.3g}")
            assert err <= TOL
            results[kind, threads] = frame.columns["c_b"]
        worst = float(np.max(np.abs(results[kind, "1"] - results[kind, "2"])))
        print(f"{kind}, {nprocs} rank(s): max |1 - 2 threads| {worst:.3g} eV")
        assert worst <= TOL, f"{kind}: 1 and 2 threads differ by {worst:.3g} eV"


def test_type_order_differs_from_the_model(lammps, tiny_models, tmp_path):
    """Type 1 is Zr and type 2 is Cu in this data file; the model's type_names are [Cu, Zr]."""
    positions, types, cell = glass(200, seed=12)
    swapped = 3 - types  # Cu (1) <-> Zr (2)
    write_data(tmp_path / "glass.data", positions, swapped, cell, masses=(91.224, 63.546))
    model = tiny_models["symgnn"]
    _, frame = _run_dump(lammps, tmp_path, "glass.data", f"{model} Zr Cu")
    assert np.array_equal(frame.columns["type"], swapped)
    assert _worst(frame, model, ["Zr", "Cu"]) <= TOL
    # the same glass with the model's order gives the same barrier for every atom
    write_data(tmp_path / "same.data", positions, types, cell)
    _, same = _run_dump(lammps, tmp_path, "same.data", f"{model} Cu Zr")
    np.testing.assert_allclose(same.columns["c_b"], frame.columns["c_b"], rtol=0, atol=1e-12)


def test_type_order_with_the_default_model(lammps, tmp_path):
    """`compute b all symgnn default Zr Cu`, the bundled model, against the ASE calculator. The
    default relaxes a copy along the simulation's forces: the pair style is the EAM potential
    the ASE calculator uses by default (its type order Zr Cu as well)."""
    from symgnn_ase import get_energy_barriers
    from symgnn_ase.potential.eam import lammps_potential_path

    positions, types, cell = glass(200, seed=13)
    write_data(tmp_path / "glass.data", positions, 3 - types, cell, masses=(91.224, 63.546))
    pair = f"pair_style eam/fs\npair_coeff * * {lammps_potential_path('CuZr_mm.eam.fs')} Zr Cu"
    # LAMMPS's default skin for metal units: the unrelaxed random glass moves the full cap
    text = input_header("glass.data", pair, skin=2.0)
    text += _dump("compute b all symgnn default Zr Cu")
    lammps.run(text, tmp_path).check()
    (frame,) = read_dump(tmp_path / "dump.txt")
    ref = get_energy_barriers(frame_atoms(frame, ("Zr", "Cu")), model="default")
    assert np.max(np.abs(frame.columns["c_b"] - ref)) <= TOL


def test_several_types_one_element(lammps, tiny_models, tmp_path):
    """Types 1 and 3 are both Cu (e.g. two groups of the same element), type 2 is Zr."""
    positions, types, cell = glass(240, seed=14)
    rng = np.random.default_rng(0)
    three = types.copy()
    three[(types == 1) & (rng.random(len(types)) < 0.5)] = 3
    assert (three == 3).sum() > 20
    write_data(tmp_path / "glass.data", positions, three, cell, masses=(63.546, 91.224, 63.546))
    model = tiny_models["equivariant"]
    res, frame = _run_dump(lammps, tmp_path, "glass.data", f"{model} Cu Zr Cu")
    assert "LAMMPS types: 1 -> Cu, 2 -> Zr, 3 -> Cu" in res.output
    assert _worst(frame, model, ["Cu", "Zr", "Cu"]) <= TOL
    # type 3 = type 1: the same numbers as with two types
    write_data(tmp_path / "two.data", positions, types, cell)
    _, two = _run_dump(lammps, tmp_path, "two.data", f"{model} Cu Zr")
    np.testing.assert_allclose(two.columns["c_b"], frame.columns["c_b"], rtol=0, atol=1e-12)


def test_missing_lammps_is_a_failure_not_a_skip(monkeypatch, tmp_path):
    """lammps[mpi] is a required dependency: without `lmp` (or `mpirun`) the LAMMPS tests fail."""
    from . import helpers

    monkeypatch.setattr(helpers, "LMP", None)
    with pytest.raises(pytest.fail.Exception, match="required dependency"):
        helpers.Lammps()
    monkeypatch.setattr(helpers, "LMP", "/bin/true")
    monkeypatch.setattr(helpers, "MPIRUN", None)
    with pytest.raises(pytest.fail.Exception, match="required"):
        helpers.Lammps().run("", tmp_path, np=2)
