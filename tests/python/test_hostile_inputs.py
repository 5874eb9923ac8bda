"""Bad inputs and misuses, as a hostile user would try them, across the five entry points: the
``symgnn predict`` CLI, the ASE calculator, the LAMMPS compute, the ``symgnn train`` CLI and the
``symgnn evaluate/export/explain`` CLIs. One table; every case must fail with a message that
names the culprit (the file, option, key, value or atom), and a CLI failure must be one line
with exit status 2 and no traceback. The number of cases is in the README (testing section).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms

from symgnn_ase.cli import main
from symgnn_ase.testing import make_nan_model, make_tiny_model, random_glass, tiny_config

CASES: list = []


def case(entry: str, *expected: str):
    """Register ``fn(env) -> message`` as a case of ``entry``; ``expected`` must be in the message
    (``{tmp}`` is replaced by the case folder)."""

    def deco(fn: Callable) -> Callable:
        CASES.append(pytest.param(entry, fn, expected, id=f"{entry}-{fn.__name__}"))
        return fn

    return deco


class Env:
    """Files shared by the cases (made once) and a fresh folder per case."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.model = root / "tiny.pt"
        make_tiny_model(self.model, "symgnn")
        self.model_eq = root / "tiny_eq.pt"
        make_tiny_model(self.model_eq, "equivariant")
        self.model_length = root / "tiny_length.pt"
        make_tiny_model(self.model_length, "length")
        self.nan_model = root / "nan.pt"
        make_nan_model(self.nan_model, "symgnn")
        self.glass = root / "glass.xyz"
        ase.io.write(self.glass, random_glass(20, seed=1))
        self.labelled = root / "labelled.xyz"
        atoms = random_glass(20, seed=2)
        atoms.arrays["energy_barrier"] = np.linspace(1.0, 2.0, len(atoms))
        ase.io.write(self.labelled, atoms)
        self.text = root / "notes.txt"
        self.text.write_text("these are my notes, not a structure nor a model\n")
        self.run = root / "run"
        self._fake_run(self.run, "symgnn")
        self.run_length = root / "run_length"
        self._fake_run(self.run_length, "length")
        self.tmp = root  # replaced per case

    @staticmethod
    def _fake_run(folder: Path, kind: str) -> None:
        from symgnn_ase.nn.factory import build_model
        from symgnn_ase.train.checkpoints import atomic_save

        cfg = tiny_config(kind)
        model = build_model(cfg)
        ckpt = {
            "model": model.state_dict(),
            "config": {"model": cfg.to_dict(), "optim": {}, "seed": 0},
            "epoch": 1,
        }
        folder.mkdir()
        atomic_save(ckpt, folder / "best.pt")
        atomic_save(ckpt, folder / "last.pt")

    def model_with(self, name: str, **meta: str) -> Path:
        """The tiny model re-saved with some metadata entries replaced."""
        from symgnn_ase.export import load_model, torchscript_allowed
        from symgnn_ase.format import METADATA_KEYS

        extra = dict.fromkeys(METADATA_KEYS, "")
        loaded = load_model(self.model)
        with torchscript_allowed():
            torch.jit.load(str(self.model), _extra_files=extra)
        extra = {k: v.decode() if isinstance(v, bytes) else v for k, v in extra.items()}
        extra.update(meta)
        out = self.tmp / name
        with torchscript_allowed():
            torch.jit.save(loaded.module, str(out), _extra_files=extra)
        return out

    def write(self, name: str, atoms) -> Path:
        path = self.tmp / name
        ase.io.write(path, atoms)
        return path


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Env:
    return Env(tmp_path_factory.mktemp("hostile"))


@pytest.fixture
def env(shared: Env, tmp_path: Path) -> Env:
    shared.tmp = tmp_path
    return shared


def cli(env: Env, *argv) -> str:
    """Run ``symgnn argv`` in-process; it must fail (2) with one error line, no traceback."""
    err = io.StringIO()
    out = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse usage errors
            rc = exc.code
    text = err.getvalue()
    assert rc == 2, f"exit status {rc}, stderr:\n{text}"
    assert "Traceback" not in text, text
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("INFO ")]
    errors = [ln for ln in lines if ": error: " in ln]
    assert len(errors) == 1, f"expected one error line, got:\n{text}"
    assert lines[-1] == errors[0], f"the error must be the last line:\n{text}"
    return errors[0]


def raises(fn: Callable, *args, **kwargs) -> str:
    """``fn(*args)`` must raise ValueError, FileNotFoundError or TypeError; its message."""
    try:
        fn(*args, **kwargs)
    except (ValueError, FileNotFoundError, TypeError) as exc:
        return str(exc)
    raise AssertionError(f"{fn} accepted the bad input")


@pytest.mark.parametrize(("entry", "fn", "expected"), CASES)
def test_hostile_input(env: Env, entry: str, fn: Callable, expected: tuple[str, ...]) -> None:
    message = fn(env)
    assert message, "empty message"
    for want in expected:
        want = want.replace("{tmp}", str(env.tmp))
        assert want in message, f"{want!r} not in the message:\n{message}"


def test_case_count_is_in_the_readme() -> None:
    """The README states how many cases this table holds."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    m = re.search(r"(\d+) bad inputs and misuses", readme)
    assert m, "README.md does not state the number of hostile-input cases"
    assert int(m.group(1)) == len(CASES), (m.group(1), len(CASES))
    entries = {p.values[0] for p in CASES}
    assert entries >= {"predict", "ase", "lammps", "train", "evaluate", "export", "explain"}
    assert len(CASES) >= 60


# ================================================================ symgnn predict
def _predict(env: Env, *args) -> str:
    return cli(env, "predict", "--no-progress", "--model", env.model, *args)


@case("predict", "input file not found: {tmp}/missing.xyz")
def missing_input(env):
    return _predict(env, env.tmp / "missing.xyz", "-o", env.tmp / "o.xyz")


@case("predict", "{tmp}/folder", "is a directory")
def input_is_a_directory(env):
    (env.tmp / "folder").mkdir()
    return _predict(env, env.tmp / "folder", "-o", env.tmp / "o.xyz")


@case("predict", "--index", "'abc'", "ase.io syntax")
def index_not_a_number(env):
    return _predict(env, "--index", "abc", env.glass, "-o", env.tmp / "o.xyz")


@case("predict", "--index '::0'", "step")
def index_zero_step(env):
    return _predict(env, "--index", "::0", env.glass, "-o", env.tmp / "o.xyz")


@case("predict", "no frames read from", "glass.xyz", "index '99'")
def index_out_of_range(env):
    return _predict(env, "--index", "99", env.glass, "-o", env.tmp / "o.xyz")


@case("predict", "--format 'bogus' is not an ase.io format")
def format_unknown(env):
    return _predict(env, "--format", "bogus", env.glass, "-o", env.tmp / "o.xyz")


@case("predict", "--types must name chemical elements", "'Xx'")
def types_not_elements(env):
    return _predict(env, "--types", "Cu,Xx", env.glass, "-o", env.tmp / "o.xyz")


@case("predict", "--types applies to LAMMPS data and dump files only")
def types_on_extxyz(env):
    return _predict(env, "--types", "Cu,Zr", env.glass, "-o", env.tmp / "o.xyz")


@case("predict", "must be an identifier", "'my barrier'")
def label_with_a_space(env):
    return _predict(env, "--label", "my barrier", env.glass, "-o", env.tmp / "o.xyz")


@case("predict", "'positions' is reserved")
def label_reserved(env):
    return _predict(env, "--label", "positions", env.glass, "-o", env.tmp / "o.xyz")


@case("predict", "/dev/null is a device")
def output_dev_null(env):
    return _predict(env, env.glass, "-o", "/dev/null")


@case("predict", "{tmp}/out is a directory")
def output_is_a_directory(env):
    (env.tmp / "out").mkdir()
    return _predict(env, env.glass, "-o", env.tmp / "out")


@case("predict", "{tmp}/link.xyz is a symbolic link")
def output_is_a_symlink(env):
    (env.tmp / "link.xyz").symlink_to(env.glass)
    return _predict(env, env.labelled, "-o", env.tmp / "link.xyz")


@case("predict", "{tmp}/pipe is a FIFO")
def output_is_a_fifo(env):
    os.mkfifo(env.tmp / "pipe")
    return _predict(env, env.glass, "-o", env.tmp / "pipe")


@case("predict", "is also an input", "glass.xyz")
def output_is_the_input(env):
    return _predict(env, env.glass, "-o", env.glass)


@case("predict", "is also an input", "tiny.pt")
def output_is_the_model(env):
    return _predict(env, env.glass, "-o", env.model)


@case("predict", "{tmp}/file", "is not a directory")
def output_below_a_file(env):
    (env.tmp / "file").write_text("x")
    return _predict(env, env.glass, "-o", env.tmp / "file" / "o.xyz")


@case("predict", "model file not found: {tmp}/nope.pt")
def model_missing(env):
    return cli(env, "predict", "--model", env.tmp / "nope.pt", env.glass, "-o", env.tmp / "o.xyz")


@case("predict", "notes.txt is not a symgnn model")
def model_is_a_text_file(env):
    return cli(env, "predict", "--model", env.text, env.glass, "-o", env.tmp / "o.xyz")


@case("predict", "device must be like", "'gpu0'")
def device_unknown(env):
    return _predict(env, "--device", "gpu0", env.glass, "-o", env.tmp / "o.xyz")


@case("predict", "--threads", "-1")
def threads_negative(env):
    return _predict(env, "--threads", "-1", env.glass, "-o", env.tmp / "o.xyz")


@case("predict", "nickel.xyz frame 0", "`Ni`", "[Cu, Zr]")
def element_not_in_the_model(env):
    bad = env.write("nickel.xyz", Atoms("Ni2", positions=[[0, 0, 0], [2.5, 0, 0]]))
    return _predict(env, bad, "-o", env.tmp / "o.xyz")


@case("predict", "notes.txt", "cannot tell the format")
def input_is_a_text_file(env):
    return _predict(env, env.text, "-o", env.tmp / "o.xyz")


@case("predict", "nan.xyz frame 0", "positions are not finite", "index 3")
def nan_position(env):
    atoms = random_glass(12, seed=3)
    atoms.positions[3] = np.nan
    return _predict(env, env.write("nan.xyz", atoms), "-o", env.tmp / "o.xyz")


@case("predict", "dup.xyz frame 0", "atoms 2 and 5 are 0 Å apart")
def coincident_atoms(env):
    atoms = random_glass(12, seed=4)
    atoms.positions[5] = atoms.positions[2]
    return _predict(env, env.write("dup.xyz", atoms), "-o", env.tmp / "o.xyz")


@case("predict", "zero.xyz frame 0", "0 atoms")
def structure_without_atoms(env):
    return _predict(env, env.write("zero.xyz", Atoms()), "-o", env.tmp / "o.xyz")


@case("predict", "bare.data frame 0", "--types")
def lammps_data_without_types(env):
    path = env.tmp / "bare.data"
    ase.io.write(path, random_glass(12, seed=5), format="lammps-data", specorder=["Cu", "Zr"])
    return _predict(env, path, "-o", env.tmp / "o.xyz")


@case("predict", "traj.xyz frame 1", "not finite", "1 frame(s) failed", "holds the 1 good")
def one_bad_frame_of_two(env):
    good = random_glass(12, seed=6)
    bad = random_glass(12, seed=7)
    bad.positions[0, 1] = np.inf
    path = env.tmp / "traj.xyz"
    ase.io.write(path, [good, bad])
    return _predict(env, path, "-o", env.tmp / "o.xyz")


@case("predict", "nan.pt returned non-finite barriers", "glass.xyz frame 0")
def nan_model_output(env):
    return cli(
        env, "predict", "--no-progress", "--model", env.nan_model, env.glass, "-o", env.tmp / "o"
    )


@case("predict", "the following arguments are required: -o/--output")
def output_not_given(env):
    return cli(env, "predict", env.glass)


# ================================================================ the ASE calculator
def _calc(model=None, **kw):
    from symgnn_ase import SymGNNCalculator

    return SymGNNCalculator(model, **kw)


def _barriers(env: Env, atoms, model=None) -> str:
    return raises(lambda: _calc(model or env.model).get_property("energy_barriers", atoms))


@case("ase", "model file not found: {tmp}/nope.pt")
def ase_model_missing(env):
    return raises(_calc, env.tmp / "nope.pt")


@case("ase", "notes.txt is not a symgnn model")
def ase_model_text_file(env):
    return raises(_calc, env.text)


@case("ase", "{tmp}", "is a directory")
def ase_model_directory(env):
    return raises(_calc, env.tmp)


@case("ase", "plain.pt is not a symgnn model", "symgnn_format")
def ase_torchscript_without_metadata(env):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(torch.nn.Linear(3, 1)), str(env.tmp / "plain.pt"))
    return raises(_calc, env.tmp / "plain.pt")


@case("ase", "kcal.pt", "metadata `unit` is 'kcal/mol', not 'eV'")
def ase_unit_not_ev(env):
    return raises(_calc, env.model_with("kcal.pt", unit="kcal/mol"))


@case("ase", "energy.pt", "metadata `output` is 'energy', not 'energy_barrier'")
def ase_output_not_barrier(env):
    return raises(_calc, env.model_with("energy.pt", output="energy"))


@case("ase", "layers.pt", "metadata `n_layers` must be a positive integer, got 'four'")
def ase_n_layers_not_int(env):
    return raises(_calc, env.model_with("layers.pt", n_layers="four"))


@case("ase", "info.pt", "metadata `info` must be a JSON object, got '{not json'")
def ase_info_not_json(env):
    return raises(_calc, env.model_with("info.pt", info="{not json"))


@case("ase", "names.pt", "metadata `type_names` must be distinct species names")
def ase_type_names_blank(env):
    return raises(_calc, env.model_with("names.pt", type_names=" "))


@case("ase", "rmax.pt", "metadata `r_max` must be a finite number > 0", "'-5'")
def ase_r_max_negative(env):
    return raises(_calc, env.model_with("rmax.pt", r_max="-5"))


@case("ase", "half.pt", "metadata `dtype` must be one of", "'float16'")
def ase_dtype_unknown(env):
    return raises(_calc, env.model_with("half.pt", dtype="float16"))


@case("ase", "barrier_interval must be >= 0, got -1")
def ase_barrier_interval_negative(env):
    return raises(_calc, env.model, barrier_interval=-1)


@case("ase", "barrier_interval must be an int, got str")
def ase_barrier_interval_text(env):
    return raises(_calc, env.model, barrier_interval="5")


@case("ase", "n_threads must be None or an int >= 1, got 0")
def ase_zero_threads(env):
    return raises(_calc, env.model, n_threads=0)


@case("ase", "base must be an ASE calculator, got str")
def ase_base_not_a_calculator(env):
    return raises(_calc, env.model, base="EMT")


@case("ase", "device must be like", "'gpu0'")
def ase_device_unknown(env):
    return raises(_calc, env.model, device="gpu0")


@case("ase", "atoms is empty (0 atoms)")
def ase_no_atoms(env):
    return _barriers(env, Atoms())


@case("ase", "positions are not finite", "index 2")
def ase_infinite_position(env):
    atoms = random_glass(10, seed=8)
    atoms.positions[2, 0] = np.inf
    return _barriers(env, atoms)


@case("ase", "cell has non-finite entries on a periodic axis")
def ase_nan_cell(env):
    atoms = random_glass(10, seed=9)
    atoms.cell[0, 0] = np.nan
    return _barriers(env, atoms)


@case("ase", "atom 1 is `Xe`", "[Cu, Zr]")
def ase_unknown_element(env):
    return _barriers(env, Atoms("CuXe", positions=[[0, 0, 0], [2.5, 0, 0]]))


@case("ase", "nan.pt returned non-finite barriers for 10 of 10 atom(s)")
def ase_nan_output(env):
    return _barriers(env, random_glass(10, seed=10), model=env.nan_model)


@case("ase", "atoms 0 and 1 are 0.1 Å apart")
def ase_coincident(env):
    return _barriers(env, Atoms("CuZr", positions=[[0, 0, 0], [0.1, 0, 0]]))


@case("ase", "atom 0 and its own periodic image are 0.3 Å apart")
def ase_own_image(env):
    return _barriers(env, Atoms("Cu", cell=[0.3, 4, 4], pbc=[True, False, False]))


@case("ase", "2 atoms in a 1 Å^3 cell", "at most 500")
def ase_absurd_density(env):
    atoms = Atoms("CuZr", positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=[1, 1, 1], pbc=True)
    return _barriers(env, atoms)


@case("ase", "has 728 neighbors within r_max", "at most 500")
def ase_dense_cluster(env):
    grid = np.stack(np.meshgrid(*[np.arange(9) * 0.55] * 3), -1).reshape(-1, 3)
    return _barriers(env, Atoms(["Cu"] * len(grid), positions=grid))


@case("ase", "atoms must be an ase.Atoms, got str")
def ase_not_atoms(env):
    from symgnn_ase import get_energy_barriers

    return raises(get_energy_barriers, "glass.xyz", model=env.model)


@case("ase", "singular")
def ase_singular_cell(env):
    atoms = random_glass(10, seed=11)
    atoms.cell[2] = atoms.cell[0]
    return _barriers(env, atoms)


# ================================================================ the LAMMPS compute
def _lammps(env: Env, compute: str, data: str = "glass.data", positions=None, cell=None) -> str:
    from ..lammps.helpers import Lammps, glass, input_header, write_data

    lmp = Lammps()
    if positions is None:
        positions, types, cell = glass(60, seed=7)
    else:
        types = np.array([1 + k % 2 for k in range(len(positions))])
    write_data(env.tmp / data, positions, types, cell)
    text = input_header(data) + compute + "\ncompute s all reduce sum c_b\n"
    text += "thermo_style custom step c_s\nrun 0\n"
    res = lmp.run(text, env.tmp, timeout=120)
    assert res.returncode != 0, res.output[-3000:]
    assert "Segmentation fault" not in res.output and "signal 11" not in res.output
    errors = [ln for ln in res.output.splitlines() if ln.startswith("ERROR")]
    assert errors, res.output[-3000:]
    return errors[0]


@case("lammps", "cannot read model file `no_such.pt`")
def lammps_model_missing(env):
    return _lammps(env, "compute b all symgnn no_such.pt Cu Zr")


@case("lammps", "expected 2 type name(s)", "got 1: Cu")
def lammps_too_few_types(env):
    return _lammps(env, f"compute b all symgnn {env.model} Cu")


@case("lammps", "LAMMPS type 2 maps to `Xe`", "[Cu, Zr]")
def lammps_unknown_element(env):
    return _lammps(env, f"compute b all symgnn {env.model} Cu Xe")


@case("lammps", "unknown keyword `speed`")
def lammps_unknown_keyword(env):
    return _lammps(env, f"compute b all symgnn {env.model} Cu Zr speed 2")


@case("lammps", "unknown device `gpu`")
def lammps_unknown_device(env):
    return _lammps(env, f"compute b all symgnn {env.model} Cu Zr device gpu")


@case("lammps", "notes.txt` is not a symgnn model")
def lammps_model_text_file(env):
    return _lammps(env, f"compute b all symgnn {env.text} Cu Zr")


@case("lammps", "kcal.pt", "metadata `unit` is `kcal/mol`, not `eV`")
def lammps_unit_not_ev(env):
    return _lammps(env, f"compute b all symgnn {env.model_with('kcal.pt', unit='kcal/mol')} Cu Zr")


@case("lammps", "layers.pt", "`n_layers` must be a positive integer, got `four`")
def lammps_n_layers_not_int(env):
    return _lammps(
        env, f"compute b all symgnn {env.model_with('layers.pt', n_layers='four')} Cu Zr"
    )


@case("lammps", "info.pt", "metadata `info` must be a JSON object")
def lammps_info_not_json(env):
    return _lammps(env, f"compute b all symgnn {env.model_with('info.pt', info='[1, 2')} Cu Zr")


@case("lammps", "the model returned non-finite barriers for 60 of 60", "first atom ids 1 2 3 4 5:")
def lammps_nan_output(env):
    return _lammps(env, f"compute b all symgnn {env.nan_model} Cu Zr")


@case("lammps", "atoms 3 and 9 are 0.25 A apart (closer than 0.5 A)")
def lammps_coincident(env):
    from ..lammps.helpers import glass

    positions, _, cell = glass(60, seed=7)
    positions = positions.copy()
    positions[8] = positions[2] + [0.25, 0, 0]
    return _lammps(env, f"compute b all symgnn {env.model} Cu Zr", positions=positions, cell=cell)


@case("lammps", "2 atoms in a 1 A^3 box", "at most 500 allowed")
def lammps_absurd_density(env):
    return _lammps(
        env,
        f"compute b all symgnn {env.model_eq} Cu Zr",
        positions=np.array([[0.0, 0, 0], [0.5, 0.5, 0.5]]),
        cell=np.eye(3),
    )


# ================================================================ symgnn train
def _config(env: Env, text: str) -> Path:
    path = env.tmp / "cfg.yaml"
    path.write_text(text)
    return path


def _train(env: Env, text: str, *extra) -> str:
    return cli(env, "train", "--no-progress", _config(env, text), *extra)


_DATA = "data: {{train: [{train}], valid: {valid}}}\nrun_dir: {run}\n"


def _data(env: Env, train=None, valid=None) -> str:
    return _DATA.format(
        train=train or env.labelled, valid=valid or env.labelled, run=env.tmp / "run"
    )


@case("train", "training config not found", "{tmp}/none.yaml")
def train_config_missing(env):
    return cli(env, "train", env.tmp / "none.yaml")


@case("train", "cfg.yaml", "not valid YAML")
def train_broken_yaml(env):
    return _train(env, "data: {train: [a], valid: v\n  broken: [\n")


@case("train", "cfg.yaml", "`optim.lr` must be a number", "'fast'")
def train_lr_text(env):
    return _train(env, _data(env) + "optim: {lr: fast}\n")


@case("train", "cfg.yaml", "`optim.epochs` must be an integer >= 1, got -5")
def train_epochs_negative(env):
    return _train(env, _data(env) + "optim: {epochs: -5}\n")


@case("train", "cfg.yaml", "model.node_dim must be >= 1, got 0")
def train_node_dim_zero(env):
    return _train(env, _data(env) + "model: {node_dim: 0}\n")


@case("train", "cfg.yaml", "`seed` must be an integer, got 'abc'")
def train_seed_text(env):
    return _train(env, _data(env) + "seed: abc\n")


@case("train", "cfg.yaml", "model.r_max must be a finite number, got '5A'")
def train_r_max_with_unit(env):
    return _train(env, _data(env) + "model: {r_max: 5A}\n")


@case("train", "missing_train.extxyz")
def train_file_missing(env):
    return _train(env, _data(env, train=env.tmp / "missing_train.extxyz"))


@case("train", "nan_label.xyz", "energy_barrier")
def train_nan_label(env):
    atoms = random_glass(20, seed=12)
    atoms.arrays["energy_barrier"] = np.linspace(1.0, 2.0, len(atoms))
    atoms.arrays["energy_barrier"][4] = np.nan
    path = env.write("nan_label.xyz", atoms)
    return _train(env, _data(env, train=path) + "model: {kind: length, node_dim: 8}\n")


@case("train", "--resume", "no checkpoint", "last.pt")
def train_resume_without_run(env):
    return _train(env, _data(env) + "model: {kind: length}\n", "--resume")


# ================================================================ symgnn export
@case("export", "notes.txt is not a symgnn training checkpoint")
def export_text_file(env):
    return cli(env, "export", env.text, "-o", env.tmp / "m.pt")


@case("export", "tiny.pt is an exported (TorchScript) model, not a training checkpoint")
def export_a_model(env):
    return cli(env, "export", env.model, "-o", env.tmp / "m.pt")


@case("export", "best.pt is also an input")
def export_over_the_checkpoint_read(env):
    before = (env.run / "best.pt").read_bytes()
    message = cli(env, "export", env.run, "-o", env.run / "best.pt")
    assert (env.run / "best.pt").read_bytes() == before
    return message


@case("export", "last.pt is also an input")
def export_checkpoint_over_itself(env):
    before = (env.run / "last.pt").read_bytes()
    message = cli(env, "export", env.run / "last.pt", "-o", env.run / "last.pt")
    assert (env.run / "last.pt").read_bytes() == before
    return message


@case("export", "is a directory")
def export_to_a_directory(env):
    return cli(env, "export", env.run, "-o", env.tmp)


@case("export", "checkpoint not found", "{tmp}/norun/best.pt")
def export_missing_run(env):
    (env.tmp / "norun").mkdir()
    return cli(env, "export", env.tmp / "norun", "-o", env.tmp / "m.pt")


@case("export", "--transforms applies to kind 'symgnn' only", "'length'")
def export_transforms_for_length(env):
    return cli(env, "export", env.run_length, "-o", env.tmp / "m.pt", "--transforms", "3")


@case("export", "argument --transforms: invalid int value: 'many'")
def export_transforms_text(env):
    return cli(env, "export", env.run, "-o", env.tmp / "m.pt", "--transforms", "many")


# ================================================================ symgnn evaluate
@case("evaluate", "model file not found: {tmp}/nope.pt")
def evaluate_model_missing(env):
    return cli(env, "evaluate", env.tmp / "nope.pt", env.labelled)


@case("evaluate", "`energy_barrier` not found")
def evaluate_without_labels(env):
    return cli(env, "evaluate", env.model, env.glass)


@case("evaluate", "--rotations must be >= 0, got -1")
def evaluate_negative_rotations(env):
    return cli(env, "evaluate", env.model, env.labelled, "--rotations", "-1")


@case("evaluate", "--json {tmp} is a directory")
def evaluate_json_directory(env):
    return cli(env, "evaluate", env.model, env.labelled, "--json", env.tmp)


@case("evaluate", "--json", "is also an input", "labelled.xyz")
def evaluate_json_over_input(env):
    return cli(env, "evaluate", env.model, env.labelled, "--json", env.labelled)


# ================================================================ symgnn explain
def _explain(env: Env, *args) -> str:
    return cli(env, "explain", "--model", env.model, "--epochs", "2", "--no-plots", *args)


@case("explain", "--atom 999 is out of range", "20 atoms")
def explain_atom_out_of_range(env):
    return _explain(env, env.glass, "--atom", "999", "-o", env.tmp / "ex")


@case("explain", "nothing to explain")
def explain_nothing(env):
    return _explain(env, env.glass, "-o", env.tmp / "ex")


@case("explain", "--sample must be an integer >= 0, got -1")
def explain_negative_sample(env):
    return _explain(env, env.glass, "--sample", "-1", "-o", env.tmp / "ex")


@case("explain", "--output-dir {tmp}/afile exists and is not a directory")
def explain_output_is_a_file(env):
    (env.tmp / "afile").write_text("x")
    return _explain(env, env.glass, "--atom", "1", "-o", env.tmp / "afile")


@case("explain", "{tmp}/ex/summary.json is a directory")
def explain_summary_is_a_directory(env):
    (env.tmp / "ex" / "summary.json").mkdir(parents=True)
    return _explain(env, env.glass, "--atom", "1", "-o", env.tmp / "ex")


@case("explain", "--index", "'last'")
def explain_index_text(env):
    return _explain(env, env.glass, "--atom", "1", "--index", "last", "-o", env.tmp / "ex")


@case("explain", "notes.txt is not a symgnn model")
def explain_model_text(env):
    return cli(env, "explain", "--model", env.text, env.glass, "--atom", "1", "-o", env.tmp / "e")


@case("explain", "argument --atom: invalid int value: 'first'")
def explain_atom_text(env):
    return _explain(env, env.glass, "--atom", "first", "-o", env.tmp / "ex")


def test_console_script_error_is_one_line(shared: Env, tmp_path: Path) -> None:
    """The installed `symgnn` (a fresh process): one line, no traceback, exit status 2."""
    import sys

    exe = Path(sys.executable).with_name("symgnn")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "symgnn_ase"]
    proc = subprocess.run(
        [*cmd, "predict", "--index", "abc", str(shared.glass), "-o", str(tmp_path / "o.xyz")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "symgnn predict: error: --index must be a frame number or a slice in ase.io syntax "
        "(0, -1, :, 2:10:2), got 'abc'"
    ]


def test_plugin_and_calculator_share_the_limits() -> None:
    """The LAMMPS compute refuses what the calculator refuses: the same two limits."""
    from symgnn_ase.calculator import MAX_NEIGHBORS, MIN_DISTANCE

    src = (Path(__file__).resolve().parents[2] / "lammps_plugin" / "compute_symgnn.cpp").read_text()
    max_n = re.search(r"constexpr int64_t kMaxNeighbors = (\d+);", src)
    min_d = re.search(r"constexpr double kMinDistance = ([0-9.]+);", src)
    assert max_n and min_d, "kMaxNeighbors / kMinDistance not found in compute_symgnn.cpp"
    assert int(max_n.group(1)) == MAX_NEIGHBORS
    assert float(min_d.group(1)) == MIN_DISTANCE


def test_verbose_adds_the_traceback(shared: Env, tmp_path: Path) -> None:
    """`symgnn -v`: the same one-line error, preceded by the traceback."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["-v", "export", str(shared.text), "-o", str(tmp_path / "m.pt")])
    text = err.getvalue()
    assert rc == 2
    assert "Traceback (most recent call last)" in text
    assert (
        text.strip()
        .splitlines()[-1]
        .startswith(f"symgnn export: error: {shared.text} is not a symgnn training checkpoint")
    )
