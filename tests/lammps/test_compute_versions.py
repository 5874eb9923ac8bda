"""compute symgnn and versions: a model file made by a newer symgnn (a larger ``symgnn_format``)
is refused saying so, and the plugin names the package version it was built from."""

from __future__ import annotations

from pathlib import Path

import torch

import symgnn_ase
from symgnn_ase import format as fmt
from symgnn_ase.export import torchscript_allowed

from .helpers import glass, input_header, write_data


def test_newer_format_and_version(lammps, tmp_path, tiny_models):
    positions, types, cell = glass(60, seed=7)
    write_data(tmp_path / "glass.data", positions, types, cell)
    extra = dict.fromkeys(fmt.METADATA_KEYS, "")
    with torchscript_allowed():
        module = torch.jit.load(str(tiny_models["symgnn"]), _extra_files=extra)
        torch.jit.save(
            module, str(tmp_path / "newer.pt"), _extra_files=extra | {"symgnn_format": "7"}
        )
    text = input_header("glass.data") + "compute b all symgnn newer.pt Cu Zr\nrun 0\n"
    res = lammps.run(text, tmp_path, np=1, timeout=120)
    assert res.returncode != 0, res.output[-3000:]
    for expected in (
        "`newer.pt` was made by a newer symgnn: its model format is 7",
        f"this plugin (symgnn {symgnn_ase.__version__}) reads format {fmt.FORMAT_VERSION}",
        "pip install -U symgnn-ase",
    ):
        assert expected in res.output, f"expected {expected!r} in:\n{res.output[-3000:]}"


def test_plugin_carries_the_package_version(plugin_so):
    """Its registration info (printed by `plugin load`) ends with the version from pyproject."""
    info = (
        b"symgnn per-atom energy barriers (SymGNN, TorchScript) v" + symgnn_ase.__version__.encode()
    )
    assert info in Path(plugin_so).read_bytes()
