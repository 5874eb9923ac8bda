"""What users get from the bundled models: the validation Pearson the model card promises, and
the README's quick start run with the real default model in a fresh process."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from symgnn_ase.data.graph import graph_from_atoms
from symgnn_ase.export import load_model

from ..paths import REPO, VALID, missing_data_reason

CARD = REPO / "MODEL_CARD.md"


def _bundled() -> dict[str, object]:
    from symgnn_ase import export

    finder = getattr(export, "bundled_models", None)
    if finder is None:  # moved to the format module
        from symgnn_ase.format import bundled_models as finder
    return finder()


def _card_table() -> tuple[dict[str, float], str | None, str]:
    """{bundled name: valid Pearson} and the default's name from the card's first table."""
    text = CARD.read_text()
    expected: dict[str, float] = {}
    default = None
    rows = re.findall(r"^\| `(\w+)`( \(\*\*default\*\*\))? \| `\w+` \| ([0-9.]+) \|", text, re.M)
    for name, is_default, pearson in rows:
        expected[name] = float(pearson)
        if is_default:
            default = name
    return expected, default, text


def test_card_lists_every_bundled_model_and_the_default():
    expected, default, text = _card_table()
    models = _bundled()
    names = sorted(n for n in models if n != "default")
    assert sorted(expected) == names, f"MODEL_CARD.md lists {sorted(expected)}, bundled: {names}"
    assert default is not None, "no (**default**) row in the card's bundled-model table"
    assert models["default"] == models[default], (
        f"the card says the default is {default}, models/DEFAULT names {models['default'].stem}"
    )
    table = text[text.index("## Validation results") :]
    for name, pearson in expected.items():
        assert f"| {pearson:.4f} |" in table, (
            f"{name}: valid Pearson {pearson:.4f} of the first table is in no row of the "
            "validation table"
        )


@pytest.fixture(scope="module")
def valid():
    if not VALID.exists():
        pytest.skip(missing_data_reason())
    import ase.io

    return ase.io.read(VALID)


@pytest.mark.parametrize(
    "name",
    [
        "symgnn_mdr_dns",
        "symgnn_md_dns",
        "symgnn_md_dn",
        "symgnn_md",
        "symgnn_length",
        "symgnn",
        "equivariant",
    ],
)
def test_validation_pearson_matches_the_card(valid, name):
    expected, _, _ = _card_table()
    models = _bundled()
    if name not in models:
        pytest.fail(f"bundled model {name} is missing from the package")
    model = load_model(models[name])
    g = graph_from_atoms(valid, model.r_max, model.type_names, torch.float64, "energy_barrier")
    with torch.no_grad():
        pred = model.module(g.species, g.edge_index, g.edge_vec.to(model.dtype)).double().numpy()
    label = g.label.double().numpy()
    r = float(np.corrcoef(pred, label)[0, 1])
    print(f"{name}: valid Pearson {r:.6f} (card {expected[name]:.4f})")
    # the card prints 4 decimals
    assert abs(r - expected[name]) <= 5.1e-5, (
        f"{name}: valid Pearson {r:.6f}, MODEL_CARD.md says {expected[name]:.4f}"
    )
    recorded = model.info.get("validation", {}).get("pooled", {}).get("pearson")
    if recorded is not None:  # what training measured when it selected the checkpoint
        assert abs(r - recorded) <= 1e-5, (name, r, recorded)


def test_quickstart_with_the_real_bundled_model(tmp_path):
    """examples/ase_quickstart.py as a user runs it: fresh process, bundled default model; its
    printed numbers equal the default model evaluated directly on the same structure."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "ase_quickstart.py")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = re.search(r"mean barrier (\S+) eV, range (\S+)-(\S+) eV", proc.stdout)
    assert m, proc.stdout
    mean, lo, hi = (float(x) for x in m.groups())

    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat(3)
    atoms.symbols[::3] = "Zr"
    model = load_model(_bundled()["default"])
    g = graph_from_atoms(atoms, model.r_max, model.type_names, torch.float64)
    with torch.no_grad():
        ref = model.module(g.species, g.edge_index, g.edge_vec.to(model.dtype)).double().numpy()
    assert len(ref) == 108
    assert (mean, lo, hi) == (
        float(f"{ref.mean():.3f}"),
        float(f"{ref.min():.3f}"),
        float(f"{ref.max():.3f}"),
    )
    assert 0.3 < lo <= mean <= hi < 4.0  # barriers in eV, not a unit or scale slip
