"""Hostile inputs, round three (issue 24 item 7): the BAD and WEAK cases outside labelling.

Each case fails with one line naming the culprit (or warns), and nothing the user did not name
as the output is touched: a run folder's other files, a force net's folder, an earlier
prediction's columns. The cases of ``symgnn label`` and ``--quench`` are in label/ and
test_predict_quench.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from symgnn_ase.cli import main
from symgnn_ase.compose.ensemble import export_ensemble
from symgnn_ase.data.io import file_sha256
from symgnn_ase.export import load_model, torchscript_allowed
from symgnn_ase.format import METADATA_KEYS
from symgnn_ase.nn.factory import build_model
from symgnn_ase.outputs import OutputError, check_output
from symgnn_ase.testing import (
    make_tiny_members,
    make_tiny_model,
    random_glass,
    tiny_config,
)
from symgnn_ase.train.checkpoints import atomic_save


def _cli(*argv: object) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``symgnn argv``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def _one_line(err: str, command: str) -> str:
    """The one error line of ``symgnn command`` in ``err`` (no traceback)."""
    lines = [ln for ln in err.strip().splitlines() if ln.startswith(f"symgnn {command}: error: ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    return lines[0]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fake_run(folder: Path, kind: str = "length", baseline: Path | None = None, **extra) -> Path:
    """A run folder (best.pt, last.pt, config.yaml) of an untrained tiny ``kind`` network; with
    ``baseline``, as if trained with ``data.baseline`` (its sha256 recorded, or ``sha``)."""
    cfg = tiny_config(kind)
    torch.manual_seed(1)
    model = build_model(cfg)
    data = {"baseline": str(baseline)} if baseline is not None else {}
    hashes = {}
    if baseline is not None:
        hashes["data.baseline"] = extra.get("sha") or file_sha256(baseline)
    ckpt = {
        "model": model.state_dict(),
        "config": {"model": cfg.to_dict(), "optim": {}, "seed": 0, "data": data},
        "epoch": 1,
        "data_sha256": hashes,
    }
    folder.mkdir(parents=True)
    atomic_save(ckpt, folder / "best.pt")
    atomic_save(ckpt, folder / "last.pt")
    (folder / "config.yaml").write_text("run_dir: here\n")
    return folder


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile2")
    members = make_tiny_members(root, ("length", "symgnn"), seed=3)
    ens = root / "ens.pt"
    export_ensemble(members, ens)
    labelled = root / "labelled.xyz"
    atoms = random_glass(120, seed=4)
    atoms.arrays["energy_barrier"] = np.linspace(1.0, 2.0, len(atoms))
    ase.io.write(labelled, atoms)
    base = root / "base.pt"
    make_tiny_model(base, "schnet", seed=7)
    return {
        "root": root,
        "single": Path(members[0]),
        "other": Path(members[1]),
        "ens": ens,
        "labelled": labelled,
        "base": base,
    }


# ------------------------------------------------------------------ BAD: predictions replaced


def test_a_single_model_replaces_an_ensembles_prediction_and_its_std(env, tmp_path) -> None:
    out1, out2 = tmp_path / "out1.xyz", tmp_path / "out2.xyz"
    assert _cli("predict", env["labelled"], "--model", env["ens"], "-o", out1)[0] == 0
    first = ase.io.read(out1)
    assert {"energy_barrier_pred", "energy_barrier_pred_std"} <= set(first.arrays)
    assert _cli("predict", out1, "--model", env["single"], "-o", out2)[0] == 0
    second = ase.io.read(out2)
    assert "energy_barrier_pred_std" not in second.arrays  # the stale spread is gone
    assert second.info["symgnn_predictions"] == "energy_barrier_pred"
    np.testing.assert_array_equal(second.arrays["energy_barrier"], first.arrays["energy_barrier"])
    assert not np.allclose(
        second.arrays["energy_barrier_pred"], first.arrays["energy_barrier_pred"]
    )
    # and back: the ensemble writes its spread again
    out3 = tmp_path / "out3.xyz"
    assert _cli("predict", out2, "--model", env["ens"], "-o", out3)[0] == 0
    third = ase.io.read(out3)
    assert third.info["symgnn_predictions"] == "energy_barrier_pred energy_barrier_pred_std"


# ------------------------------------------------------------------ BAD: a run folder's files


@pytest.mark.parametrize("name", ["last.pt", "config.yaml", "summary.json", "metrics.csv"])
def test_export_never_writes_a_file_of_the_run_it_reads(tmp_path, name) -> None:
    run = _fake_run(tmp_path / "run")
    (run / "summary.json").write_text("{}\n")
    target = run / name
    before = _sha(target) if target.exists() else None
    rc, _, err = _cli("export", run, "-o", target)
    assert rc == 2
    line = _one_line(err, "export")
    assert f"is a file of the run folder {run}" in line and name in line
    assert (_sha(target) if target.exists() else None) == before


def test_the_run_files_of_every_input_are_protected(env, tmp_path) -> None:
    run = _fake_run(tmp_path / "run")
    last = _sha(run / "last.pt")
    rc, _, err = _cli("ensemble", run, env["single"], "-o", run / "last.pt")
    assert rc == 2 and "is a file of the run folder" in _one_line(err, "ensemble")
    res = _fake_run(tmp_path / "res", baseline=env["base"])
    rc, _, err = _cli("residual", env["base"], res, "-o", res / "last.pt")
    assert rc == 2 and "is a file of the run folder" in _one_line(err, "residual")
    assert _sha(run / "last.pt") == last
    # a new file beside the run's files is fine (e.g. an exported model)
    assert check_output(run / "model.pt", [run]) == run / "model.pt"
    with pytest.raises(OutputError, match="run folder"):
        check_output(run / "summary.json", [run / "best.pt"])  # not there yet: still the run's


# ------------------------------------------------------------------ BAD: residual provenance


def test_a_residual_network_must_have_learned_that_baselines_remainder(env, tmp_path) -> None:
    plain = _fake_run(tmp_path / "plain")
    rc, _, err = _cli("residual", env["base"], plain, "-o", tmp_path / "r.pt")
    line = _one_line(err, "residual")
    assert rc == 2 and f"{plain} was not trained with data.baseline" in line
    assert str(env["base"]) in line
    other = tmp_path / "other_base.pt"
    make_tiny_model(other, "schnet", seed=8)
    res = _fake_run(tmp_path / "res", baseline=other)
    rc, _, err = _cli("residual", env["base"], res, "-o", tmp_path / "r.pt")
    line = _one_line(err, "residual")
    assert rc == 2 and "another file" in line
    assert str(other) in line and str(env["base"]) in line
    assert file_sha256(other)[:12] in line and file_sha256(env["base"])[:12] in line
    assert not (tmp_path / "r.pt").exists()
    # the file it was trained on is accepted; another one only when asked for
    assert _cli("residual", other, res, "-o", tmp_path / "ok.pt")[0] == 0
    rc, _, _ = _cli("residual", env["base"], res, "-o", tmp_path / "any.pt", "--any-baseline")
    assert rc == 0 and load_model(tmp_path / "any.pt").info["kind"] == "residual"


class _Widening(torch.nn.Module):
    """A crafted model file whose edge state gains a column (the edge length) in its first
    layer, which its second layer reads (as the removed learned denoiser's state changed
    width): it runs alone, but not layer by layer inside a stack that slices it by width."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, species, edge_index, edge_vec, edge_weight: torch.Tensor | None = None):
        return species.to(torch.float32) * self.w

    @torch.jit.export
    def embed(self, species, edge_index, edge_vec):
        return species.to(torch.float32).unsqueeze(1) * self.w, edge_vec

    @torch.jit.export
    def interact(self, layer: int, h, e, edge_index, edge_weight: torch.Tensor | None = None):
        if layer == 0:
            return h, torch.cat([e, e.norm(2, dim=1, keepdim=True)], dim=1)
        return h + e.select(1, 3).sum() * 0.0, e

    @torch.jit.export
    def readout(self, h):
        return h[:, 0]


def _widening(env, path: Path) -> Path:
    return _crafted(env, _Widening(), path, n_layers="2", feature_dim="1")


def test_a_member_that_changes_its_state_width_is_refused(env, tmp_path) -> None:
    """A member whose state changes width from layer to layer inside a residual or an ensemble
    cannot run layer by layer (LAMMPS aborted with `select(): index -1 out of range`): refused
    when the file is built."""
    wide = _widening(env, tmp_path / "wide.pt")
    res = _fake_run(tmp_path / "res", baseline=wide)
    rc, _, err = _cli("residual", wide, res, "-o", tmp_path / "r.pt")
    line = _one_line(err, "residual")
    assert rc == 2 and f"residual member {wide} (kind" in line
    assert "changes the width of its node/edge state" in line and "(1/3 -> 1/4)" in line
    assert not (tmp_path / "r.pt").exists()
    with pytest.raises(
        ValueError, match=r"ensemble member .*wide.pt \(kind .*\) changes the width"
    ):
        export_ensemble([str(env["single"]), str(wide)], tmp_path / "e.pt")
    assert not (tmp_path / "e.pt").exists()


def _broken_stack(env, tmp_path: Path) -> Path:
    """A residual over a member whose edge state changes width, as `symgnn residual` wrote
    it before the refusal (its layer-by-layer path fails)."""
    from symgnn_ase.compose.load import load_member
    from symgnn_ase.compose.record import export_stack
    from symgnn_ase.compose.residual import Residual
    from symgnn_ase.compose.stack import edge_width

    members = [load_member(_widening(env, tmp_path / "wide.pt")), load_member(env["single"])]
    module = Residual(
        [m.module for m in members],
        [m.n_layers for m in members],
        [m.feature_dim for m in members],
        [edge_width(m.module, m.dtype) for m in members],
    )
    return export_stack(module, members, tmp_path / "broken.pt", {})


def test_explain_reports_a_broken_layer_by_layer_model_in_one_line(env, tmp_path) -> None:
    """A residual over a width-changing member written before the refusal: one line, no
    trace."""
    broken = _broken_stack(env, tmp_path)
    glass = tmp_path / "g.xyz"
    ase.io.write(glass, random_glass(40, seed=5))
    rc, _, err = _cli(
        "explain", glass, "--model", broken, "--atom", "0", "--epochs", "1", "--no-plots",
        "-o", tmp_path / "ex",
    )  # fmt: skip
    line = _one_line(err, "explain")
    assert rc == 2 and f"model {broken} failed when run layer by layer" in line
    assert "TorchScript interpreter" not in err and "Traceback" not in err


# ------------------------------------------------------------------ WEAK: crafted model files


class _NoContract(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, species, edge_index, edge_vec):
        return species.to(torch.float32) * self.w


class _NoParameters(torch.nn.Module):
    def forward(self, species, edge_index, edge_vec):
        return species.to(torch.float32)

    @torch.jit.export
    def embed(self, species, edge_index, edge_vec):
        return species.to(torch.float32).unsqueeze(1), edge_vec

    @torch.jit.export
    def interact(self, layer: int, h, e, edge_index, edge_weight: torch.Tensor | None = None):
        return h, e

    @torch.jit.export
    def readout(self, h):
        return h[:, 0]


def _crafted(env, module: torch.nn.Module, path: Path, **meta: str) -> Path:
    extra = dict.fromkeys(METADATA_KEYS, "")
    with torchscript_allowed():
        torch.jit.load(str(env["single"]), _extra_files=extra)
        extra = {k: v.decode() if isinstance(v, bytes) else v for k, v in extra.items()}
        torch.jit.save(torch.jit.script(module), str(path), _extra_files=extra | meta)
    return path


def test_a_crafted_non_model_is_named_not_a_crash(env, tmp_path) -> None:
    plain = _crafted(env, _NoContract(), tmp_path / "plain.pt")
    rc, _, err = _cli("ensemble", plain, env["single"], "-o", tmp_path / "e.pt")
    line = _one_line(err, "ensemble")
    assert rc == 2 and "has no embed, interact, readout: not a symgnn barrier model" in line
    assert "AttributeError" not in line
    empty = _crafted(env, _NoParameters(), tmp_path / "empty.pt")
    rc, _, err = _cli("smooth", empty, "--length", "3", "-o", tmp_path / "s.pt")
    line = _one_line(err, "smooth")
    assert rc == 2 and "has no parameters" in line and "StopIteration" not in line


@pytest.mark.parametrize("outer", [False, True])
def test_a_learned_denoiser_file_is_refused_by_name(env, tmp_path, outer) -> None:
    """A file of kind `denoised` (the removed `symgnn denoise`), alone or behind the smoothing,
    is refused wherever a model is read, in one line that names it and the relax protocol."""
    import json

    from symgnn_ase.calculator import SymGNNCalculator

    info = {"kind": "denoised", "base": {"source": "symgnn_md", "info": {"kind": "length"}}}
    if outer:
        info = {"kind": "smoothed", "base": {"source": "dn.pt", "info": info}}
    old = _crafted(env, _NoContract(), tmp_path / "old_dn.pt", info=json.dumps(info))
    pattern = (
        rf"{old}: kind `denoised` \(the learned thermal denoiser\) is no longer supported: it "
        r"was replaced by the relax protocol.*its base model \(symgnn_md\).*`symgnn relax MODEL "
        r"--steps 4.*relax_steps 4"
    )
    with pytest.raises(ValueError, match=pattern):
        load_model(old)
    with pytest.raises(ValueError, match=pattern):
        SymGNNCalculator(str(old))
    for command in (
        ["predict", env["labelled"], "--model", old, "-o", tmp_path / "p.xyz"],
        ["smooth", old, "--length", "3", "-o", tmp_path / "s.pt"],
        ["ensemble", old, env["single"], "-o", tmp_path / "e.pt"],
    ):
        rc, _, err = _cli(*command)
        line = _one_line(err, command[0])
        assert rc == 2 and f"{old}: kind `denoised`" in line and "relax protocol" in line
    assert not any((tmp_path / n).exists() for n in ("p.xyz", "s.pt", "e.pt"))


def test_type_names_must_be_elements(env, tmp_path) -> None:
    path = _crafted(env, _NoContract(), tmp_path / "foo.pt", type_names="Cu Foo")
    with pytest.raises(ValueError, match=r"metadata `type_names` must be chemical element.*Foo"):
        load_model(path)


def test_wrapping_twice_and_duplicate_members_warn(env, tmp_path, caplog) -> None:
    from symgnn_ase.compose.smooth import export_smoothed

    caplog.set_level(logging.WARNING)
    export_ensemble([str(env["single"]), str(env["single"])], tmp_path / "twice.pt")
    assert "are the same model" in caplog.text and "spread is 0" in caplog.text
    caplog.clear()
    sm = export_smoothed(env["single"], tmp_path / "sm.pt", 3.0)
    assert "already" not in caplog.text
    export_smoothed(sm, tmp_path / "sm2.pt", 3.0)
    assert "is already smoothed" in caplog.text


# ------------------------------------------------------------------ WEAK: reading and training


def test_types_that_name_too_few_lammps_types(env, tmp_path) -> None:
    atoms = Atoms("CuZrCu", positions=[[0, 0, 0], [2.6, 0, 0], [0, 2.6, 0]], cell=[10] * 3)
    atoms.pbc = True
    data = tmp_path / "two.data"
    ase.io.write(data, atoms, format="lammps-data", specorder=["Cu", "Zr"])
    rc, _, err = _cli(
        "predict", data, "--types", "Cu", "--model", env["single"], "-o", tmp_path / "o.xyz"
    )
    line = _one_line(err, "predict")
    assert rc == 2 and "has atom type 2 that --types Cu does not name" in line
    assert "np.int64" not in line


def _train_config(tmp_path: Path, train_files: list[Path], valid: Path, run_dir: str) -> Path:
    import yaml

    cfg = {
        "run_dir": run_dir,
        "seed": 0,
        "threads": 1,
        "data": {"train": [str(f) for f in train_files], "valid": str(valid)},
        "model": {"kind": "length", "node_dim": 8, "edge_dim": 8, "heads": [2, 2, 1, 1]},
        "optim": {"epochs": 1},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_train_errors_name_the_file(env, tmp_path) -> None:
    good = env["labelled"]
    unlabelled = tmp_path / "unlabelled.xyz"
    ase.io.write(unlabelled, random_glass(60, seed=9))
    cfg = _train_config(tmp_path, [good, unlabelled], good, str(tmp_path / "run"))
    rc, _, err = _cli("train", cfg)
    line = _one_line(err, "train")
    assert rc == 2 and str(unlabelled) in line and "`energy_barrier` not found" in line
    wrong = tmp_path / "wrong.xyz"
    atoms = random_glass(60, seed=10)
    atoms.arrays["energy_barrier"] = np.ones(len(atoms))
    atoms.symbols[3] = "Al"
    ase.io.write(wrong, atoms)
    cfg = _train_config(tmp_path, [wrong], good, str(tmp_path / "run"))
    rc, _, err = _cli("train", cfg)
    line = _one_line(err, "train")
    assert rc == 2 and str(wrong) in line and "atom 3 is `Al`" in line


def test_run_dir_that_holds_the_config(env, tmp_path, monkeypatch) -> None:
    cfg = _train_config(tmp_path, [env["labelled"]], env["labelled"], ".")
    monkeypatch.chdir(tmp_path)
    before = _sha(cfg)
    rc, _, err = _cli("train", "config.yaml")
    line = _one_line(err, "train")
    assert rc == 2 and "run_dir '.' is the folder of the config config.yaml" in line
    assert "SameFileError" not in line and _sha(cfg) == before
    assert not (tmp_path / "best.pt").exists()


def test_evaluate_names_unlabelled_atoms(env, tmp_path, caplog) -> None:
    atoms = ase.io.read(env["labelled"])
    atoms.arrays["energy_barrier"][7] = np.nan
    path = tmp_path / "nan.xyz"
    ase.io.write(path, atoms)
    caplog.set_level(logging.WARNING)
    rc, out, _ = _cli("evaluate", env["single"], path)
    assert rc == 0 and "n=   119" in out
    assert "nan.xyz: 1 atom(s) have a non-finite `energy_barrier` label (first: atom 7" in (
        caplog.text
    )


# ------------------------------------------------------------------ WEAK: quench with NaN forces


class _NaNForces(Calculator):
    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("forces",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        forces = np.zeros((len(self.atoms), 3))
        forces[5] = np.nan
        self.results = {"energy": 0.0, "forces": forces}


def test_a_base_calculator_with_nan_forces_is_named_at_once() -> None:
    from symgnn_ase.potential.quench import quench_ase

    calc = _NaNForces()
    with pytest.raises(ValueError, match=r"_NaNForces gave non-finite forces for 1 atom.*atom 5"):
        quench_ase(random_glass(40, seed=6), calc)


# ------------------------------------------------------------------ WEAK: demo and doctor


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--np", "0"], "--np (MPI ranks) must be an integer >= 1, got 0"),
        (["--model", "nope.pt"], "model file not found: nope.pt"),
        (["--var", "n_mdd", "5"], "--var n_mdd: in.glass and in.shear have no variable"),
        (["--var", "out", "/tmp/x"], "--var out: the demo sets `out` itself; use -o instead"),
    ],
)
def test_demo_refuses_bad_options_before_any_work(tmp_path, args, expected) -> None:
    rc, _, err = _cli("demo", "-o", tmp_path / "demo", *args)
    assert rc == 2 and expected in _one_line(err, "demo")
    assert not (tmp_path / "demo").exists()


def test_demo_output_must_be_a_new_or_demo_folder(tmp_path) -> None:
    file = tmp_path / "file"
    file.write_text("mine\n")
    rc, _, err = _cli("demo", "-o", file)
    assert rc == 2 and "exists and is not a folder" in _one_line(err, "demo")
    assert "Errno" not in err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "glass.data").write_text("mine\n")
    rc, _, err = _cli("demo", "-o", tmp_path / "mine")
    assert rc == 2 and "already holds files (glass.data)" in _one_line(err, "demo")
    assert (tmp_path / "mine" / "glass.data").read_text() == "mine\n"


def test_doctor_flags_model_folder_problems(tmp_path, monkeypatch) -> None:
    from symgnn_ase.doctor import diagnose

    monkeypatch.setenv("SYMGNN_MODELS_DIR", str(tmp_path / "nowhere"))
    rows, ok, _ = diagnose()
    assert not ok and any("PROBLEM" in v and "does not exist" in v for _, v in rows)
    models = tmp_path / "models"
    models.mkdir()
    (models / "DEFAULT").write_text("gone\n")
    monkeypatch.setenv("SYMGNN_MODELS_DIR", str(models))
    rows, ok, _ = diagnose()
    assert not ok and any("names gone" in v and "falls back" in v for _, v in rows)
    (models / "DEFAULT").write_text("notes\n")
    (models / "notes.pt").write_text("a text file\n")
    rows, ok, _ = diagnose()
    default = dict(rows)["default model"]
    assert not ok and default.startswith("BROKEN: ") and "not a TorchScript archive" in default


# ------------------------------------------------------------------ WEAK: far from training data


def test_a_tiny_structure_is_flagged_once(env, caplog) -> None:
    from symgnn_ase.calculator import SymGNNCalculator
    from symgnn_ase.data.domain import outside_training

    caplog.set_level(logging.WARNING)
    calc = SymGNNCalculator(model=env["single"])
    atoms = Atoms("CuZrCu", positions=[[0, 0, 0], [2.6, 0, 0], [0, 2.6, 0]], cell=[20] * 3)
    atoms.pbc = True
    calc.get_property("energy_barriers", atoms)
    assert caplog.text.count("far outside the models' training data") == 1
    assert "3 atom(s)" in caplog.text
    atoms.positions[0, 2] += 0.1
    calc.get_property("energy_barriers", atoms)
    assert caplog.text.count("far outside") == 1  # once per calculator
    # a glass-like structure is not flagged; one atom with too many neighbours is
    receivers = np.repeat(np.arange(500), 32)
    assert outside_training(500, receivers, 5.0) is None
    crowded = np.concatenate([receivers, np.zeros(100, dtype=np.int64)])
    assert "1 atom(s) with a neighbour count" in outside_training(500, crowded, 5.0)


def test_init_from_a_residual_run_needs_the_same_baseline_file(env, tmp_path) -> None:
    """The same `data.baseline` name is not enough: the file must be the one recorded."""
    import yaml

    res = _fake_run(tmp_path / "res", baseline=env["base"], sha="0" * 64)
    cfg = yaml.safe_load(
        _train_config(tmp_path, [env["labelled"]], env["labelled"], str(tmp_path / "r")).read_text()
    )
    cfg["init"] = str(res)
    cfg["data"]["baseline"] = str(env["base"])
    del cfg["model"]
    path = tmp_path / "init.yaml"
    path.write_text(yaml.safe_dump(cfg))
    rc, _, err = _cli("train", path)
    line = _one_line(err, "train")
    assert rc == 2 and "sha256 000000000000, but that file is now" in line
    assert file_sha256(env["base"])[:12] in line


def test_a_new_run_never_writes_over_a_fit_it_may_read(env, tmp_path) -> None:
    """A ridge fit's folder has best.pt but no last.pt: a new run there would replace the fit
    (read as `init` or behind `data.baseline`)."""
    fit = _fake_run(tmp_path / "fit")
    (fit / "last.pt").unlink()
    before = _sha(fit / "best.pt")
    cfg = _train_config(tmp_path, [env["labelled"]], env["labelled"], str(fit))
    rc, _, err = _cli("train", cfg)
    line = _one_line(err, "train")
    assert rc == 2 and f"run folder {fit} already holds a run or fit (best.pt)" in line
    assert _sha(fit / "best.pt") == before


def test_explain_never_writes_over_files_it_did_not_write(env, tmp_path) -> None:
    glass = tmp_path / "g.xyz"
    ase.io.write(glass, random_glass(40, seed=5))
    out = tmp_path / "mine"
    out.mkdir()
    (out / "summary.json").write_text('{"my": "notes"}\n')
    args = ["--model", env["single"], "--atom", "0", "--epochs", "1", "--no-plots", "-o", out]
    rc, _, err = _cli("explain", glass, *args)
    assert rc == 2 and "already holds summary.json, not written by an earlier" in (
        _one_line(err, "explain")
    )
    assert (out / "summary.json").read_text() == '{"my": "notes"}\n'
    fresh = tmp_path / "fresh"
    args[-1] = fresh
    assert _cli("explain", glass, *args)[0] == 0
    assert _cli("explain", glass, *args)[0] == 0  # its own earlier output is replaced


def test_a_run_never_writes_over_a_users_files(env, tmp_path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "metrics.csv").write_text("my,numbers\n")
    cfg = _train_config(tmp_path, [env["labelled"]], env["labelled"], str(folder))
    rc, _, err = _cli("train", cfg)
    assert rc == 2 and "holds metrics.csv, not written by a symgnn run" in _one_line(err, "train")
    assert (folder / "metrics.csv").read_text() == "my,numbers\n"


def test_a_prediction_is_never_taken_for_a_label(env, tmp_path) -> None:
    """`symgnn predict` on an unlabelled glass writes `energy_barrier`, listed as a prediction:
    scoring or training against it would compare a model with a model."""
    glass = tmp_path / "glass.xyz"
    ase.io.write(glass, random_glass(120, seed=11))
    predicted = tmp_path / "predicted.xyz"
    assert _cli("predict", glass, "--model", env["single"], "-o", predicted)[0] == 0
    rc, _, err = _cli("evaluate", env["other"], predicted)
    line = _one_line(err, "evaluate")
    assert (
        rc == 2 and "predicted.xyz: per-atom array `energy_barrier` is a symgnn prediction" in line
    )
    cfg = _train_config(tmp_path, [predicted], env["labelled"], str(tmp_path / "run"))
    rc, _, err = _cli("train", cfg)
    assert rc == 2 and "`energy_barrier` is a symgnn prediction" in _one_line(err, "train")


def test_an_exported_file_is_no_residual_network(env, tmp_path) -> None:
    rc, _, err = _cli("residual", env["base"], env["single"], "-o", tmp_path / "r.pt")
    line = _one_line(err, "residual")
    assert rc == 2 and "is an exported model file, which does not record a training" in line


def test_a_residual_network_given_twice_is_refused(env, tmp_path) -> None:
    res = _fake_run(tmp_path / "res", baseline=env["base"])
    rc, _, err = _cli("residual", env["base"], res, res / "best.pt", "-o", tmp_path / "r.pt")
    line = _one_line(err, "residual")
    assert rc == 2 and "are the same model" in line and "count twice" in line


def test_an_older_broken_stack_is_refused_as_a_member(env, tmp_path) -> None:
    broken = _broken_stack(env, tmp_path)
    rc, _, err = _cli("ensemble", broken, env["single"], "-o", tmp_path / "e.pt")
    line = _one_line(err, "ensemble")
    assert rc == 2 and f"ensemble member {broken} fails when run layer by layer" in line
    assert "select(): index 3 out of range" in line and "Traceback" not in line
    for command in (["smooth", broken, "--length", "3"],):
        rc, _, err = _cli(*command, "-o", tmp_path / "w.pt")
        line = _one_line(err, command[0])
        assert rc == 2 and f"model {broken} fails when run layer by layer" in line
