"""Bad input stops LAMMPS with a message that names the bad token and the expected form,
on one rank and under MPI, without a crash or a hang."""

from __future__ import annotations

import warnings
import zipfile

import pytest
import torch

from .helpers import glass, input_header, write_data


@pytest.fixture
def workdir(tmp_path):
    positions, types, cell = glass(60, seed=7)
    write_data(tmp_path / "glass.data", positions, types, cell)
    return tmp_path


def _fails(lammps, workdir, compute: str, *expected: str, nprocs: int = 1, header=None) -> str:
    text = (header if header is not None else input_header("glass.data")) + compute + "\nrun 0\n"
    return lammps.run(text, workdir, np=nprocs, timeout=120).check_error(*expected)


def test_missing_model(lammps, workdir):
    _fails(
        lammps,
        workdir,
        "compute b all symgnn no_such_model.pt Cu Zr",
        "cannot read model file `no_such_model.pt`",
        "No such file or directory",
        "MODEL must be the path of an exported symgnn model",
    )


def test_unreadable_model(lammps, workdir, tiny_models):
    folder = workdir / "a_folder.pt"
    folder.mkdir()
    _fails(lammps, workdir, f"compute b all symgnn {folder} Cu Zr", "cannot read model file")


def test_not_a_torchscript_file(lammps, workdir):
    (workdir / "junk.pt").write_text("this is not a model\n")
    _fails(
        lammps,
        workdir,
        "compute b all symgnn junk.pt Cu Zr",
        "`junk.pt` is not a symgnn model: not a TorchScript archive",
    )


def test_torchscript_without_metadata(lammps, workdir):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(torch.nn.Linear(3, 1))
        torch.jit.save(scripted, str(workdir / "plain.pt"))
    _fails(
        lammps,
        workdir,
        "compute b all symgnn plain.pt Cu Zr",
        "`plain.pt` is not a symgnn model",
        "symgnn_format",
    )


def test_zip_that_is_not_torchscript(lammps, workdir):
    with zipfile.ZipFile(workdir / "other.pt", "w") as zf:
        zf.writestr("hello.txt", "hi")
    _fails(
        lammps,
        workdir,
        "compute b all symgnn other.pt Cu Zr",
        "`other.pt` is not a loadable TorchScript model",
    )


def test_type_not_in_model(lammps, workdir, tiny_models):
    _fails(
        lammps,
        workdir,
        f"compute b all symgnn {tiny_models['symgnn']} Cu Xe",
        "LAMMPS type 2 maps to `Xe`, which is not in the model's type_names [Cu, Zr]",
    )


def test_too_few_arguments(lammps, workdir):
    _fails(
        lammps,
        workdir,
        "compute b all symgnn",
        "Illegal compute symgnn command",
        "compute ID group-ID symgnn MODEL TYPE1 ... TYPEn [device cpu|cuda]",
    )


def test_wrong_type_count(lammps, workdir, tiny_models):
    _fails(
        lammps,
        workdir,
        f"compute b all symgnn {tiny_models['symgnn']} Cu device cpu",
        "expected 2 type name(s) after MODEL",
        "got 1: Cu",
    )


def test_unknown_keyword(lammps, workdir, tiny_models):
    _fails(
        lammps,
        workdir,
        f"compute b all symgnn {tiny_models['symgnn']} Cu Zr precision double",
        "unknown keyword `precision`",
        "expected `device cpu|cuda`",
    )


def test_extra_type_name_reads_as_unknown_keyword(lammps, workdir, tiny_models):
    _fails(
        lammps,
        workdir,
        f"compute b all symgnn {tiny_models['symgnn']} Cu Zr Cu",
        "unknown keyword `Cu` after the 2 type name(s) (LAMMPS has 2 atom type(s))",
    )


def test_bad_device(lammps, workdir, tiny_models):
    _fails(
        lammps,
        workdir,
        f"compute b all symgnn {tiny_models['symgnn']} Cu Zr device tpu",
        "unknown device `tpu`",
    )
    _fails(
        lammps,
        workdir,
        f"compute b all symgnn {tiny_models['symgnn']} Cu Zr device",
        "keyword `device` needs a value",
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda(lammps, workdir, tiny_models):
    _fails(
        lammps,
        workdir,
        f"compute b all symgnn {tiny_models['symgnn']} Cu Zr device cuda",
        "device cuda:",
        "use `device cpu`",
    )


def test_units_not_metal(lammps, workdir, tiny_models):
    header = input_header("glass.data").replace("units metal", "units real")
    _fails(
        lammps,
        workdir,
        f"compute b all symgnn {tiny_models['symgnn']} Cu Zr",
        "compute symgnn requires `units metal`",
        "`units real`",
        header=header,
    )


def test_no_atom_types(lammps, workdir, tiny_models):
    """Every LAMMPS atom style has atom types; before a box exists there are none."""
    _fails(
        lammps,
        workdir,
        f"compute b all symgnn {tiny_models['symgnn']} Cu Zr",
        "compute symgnn requires atom types: define the simulation box first",
        header="units metal\natom_style atomic\n",
    )


@pytest.mark.parametrize("nprocs", [2, 4])
def test_errors_under_mpi_do_not_hang(lammps, workdir, tiny_models, nprocs):
    _fails(
        lammps,
        workdir,
        f"compute b all symgnn {tiny_models['symgnn']} Cu Xe",
        "maps to `Xe`",
        nprocs=nprocs,
    )
    _fails(
        lammps,
        workdir,
        "compute b all symgnn no_such_model.pt Cu Zr",
        "cannot read model file",
        nprocs=nprocs,
    )
