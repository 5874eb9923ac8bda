"""What users get from the bundled models: each file scores on the validation glass what
``python/symgnn_ase/models/scores.json`` records (written by ``python training/bundle_scores.py``,
the one command to rerun when the bundle changes), the model card quotes those numbers, and the
README's quick start runs with the real default model in a fresh process. Nothing here names a
model or reads an expected number from Markdown: the tests follow whatever files are bundled."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from symgnn_ase.data.graph import graph_from_atoms
from symgnn_ase.export import load_model
from symgnn_ase.format import DEFAULT_FILE, MODEL_SUFFIX, PACKAGE_MODELS_DIR

from ..paths import REPO, VALID, require_data

CARD = REPO / "MODEL_CARD.md"
SCORES = PACKAGE_MODELS_DIR / "scores.json"
REGENERATE = "after changing the bundle, run `python training/bundle_scores.py`"
#: the bundled files, found when the tests are collected
BUNDLED = sorted(p.stem for p in PACKAGE_MODELS_DIR.glob("*" + MODEL_SUFFIX))
#: a file scores what it scored when the record was written: the promise across CPUs and
#: thread counts is 1e-5 eV per atom, which moves a Pearson correlation by far less
TOL = 1e-5


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _scores() -> dict:
    assert SCORES.is_file(), f"{SCORES} is missing: {REGENERATE}"
    return json.loads(SCORES.read_text())


def _default_name() -> str:
    return (PACKAGE_MODELS_DIR / DEFAULT_FILE).read_text().split()[0]


def test_scores_record_every_bundled_file_as_it_is():
    assert BUNDLED, f"no bundled *{MODEL_SUFFIX} in {PACKAGE_MODELS_DIR}"
    scores = _scores()
    recorded = sorted(scores["models"])
    assert recorded == BUNDLED, (
        f"{SCORES.name} records {recorded}, bundled: {BUNDLED}; {REGENERATE}"
    )
    for name, entry in scores["models"].items():
        path = PACKAGE_MODELS_DIR / entry["file"]
        assert path.stem == name
        assert _sha256(path) == entry["sha256"], (
            f"{path.name} is not the file {SCORES.name} scored (SHA-256 differs): {REGENERATE}"
        )
        assert 0 < entry["pearson"] < 1 and entry["n_atoms"] > 0
    assert scores["default"] == _default_name(), (
        f"models/{DEFAULT_FILE} names {_default_name()}, {SCORES.name} {scores['default']}: "
        f"{REGENERATE}"
    )
    valid = require_data(VALID)
    assert _sha256(valid) == scores["valid_sha256"], (
        f"{valid} changed since the scores: {REGENERATE}"
    )


def test_card_quotes_the_scores():
    """MODEL_CARD.md's first table lists every bundled model with the Pearson of scores.json (4
    decimals) and marks the default."""
    scores = _scores()
    text = CARD.read_text()
    rows = re.findall(r"^\| `(\w+)`( \(\*\*default\*\*\))? \| `\w+` \| ([0-9.]+) \|", text, re.M)
    card = {name: pearson for name, _, pearson in rows}
    assert sorted(card) == BUNDLED, f"MODEL_CARD.md lists {sorted(card)}, bundled: {BUNDLED}"
    for name, entry in scores["models"].items():
        assert card[name] == f"{entry['pearson']:.4f}", (
            f"MODEL_CARD.md gives {name} a valid Pearson of {card[name]}, "
            f"{SCORES.name} {entry['pearson']:.4f}"
        )
    defaults = [name for name, is_default, _ in rows if is_default]
    assert defaults == [scores["default"]], (
        f"MODEL_CARD.md marks {defaults} as the default, models/{DEFAULT_FILE} names "
        f"{scores['default']}"
    )


@pytest.fixture(scope="module")
def valid():
    import ase.io

    return ase.io.read(require_data(VALID))


@pytest.mark.slow
@pytest.mark.parametrize("name", BUNDLED)
def test_validation_pearson_matches_the_record(valid, name):
    entry = _scores()["models"].get(name)
    assert entry is not None, f"{SCORES.name} has no entry for {name}: {REGENERATE}"
    model = load_model(PACKAGE_MODELS_DIR / entry["file"])
    if model.node_inputs is not None:  # its inputs from its potential, as `symgnn evaluate`
        from symgnn_ase.train.evaluate import evaluate_files

        r = evaluate_files(model, [str(require_data(VALID))])["pooled"]["pearson"]
    else:
        g = graph_from_atoms(valid, model.r_max, model.type_names, torch.float64, "energy_barrier")
        with torch.no_grad():
            vec = g.edge_vec.to(model.dtype)
            pred = model.module(g.species, g.edge_index, vec).double().numpy()
        r = float(np.corrcoef(pred, g.label.double().numpy())[0, 1])
    print(f"{name}: valid Pearson {r:.6f} (recorded {entry['pearson']:.6f})")
    assert abs(r - entry["pearson"]) <= TOL, (
        f"{name}: valid Pearson {r:.6f}, {SCORES.name} records {entry['pearson']:.6f}"
    )
    recorded = model.info.get("validation", {}).get("pooled", {}).get("pearson")
    if recorded is not None:  # what training measured when it selected the checkpoint
        assert abs(r - recorded) <= TOL, (name, r, recorded)


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
    model = load_model(PACKAGE_MODELS_DIR / (_default_name() + MODEL_SUFFIX))
    if model.relax.enabled:  # the calculator predicts on a copy moved by the file's protocol
        from symgnn_ase.potential.lammps import LammpsPotential
        from symgnn_ase.potential.relax import relax_positions

        with LammpsPotential(model.relax.potential) as pot:
            moved = relax_positions(atoms.positions, lambda x: pot.forces(atoms, x), model.relax)
        atoms.positions = moved
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


def test_symgnn_pe_is_exactly_invariant():
    """`symgnn_pe` (energy inputs on the relax-moved copy) on the validation glass rotated and
    reflected: the same barriers up to float32 round-off."""
    from symgnn_ase.train.evaluate import evaluate_files

    if "symgnn_pe" not in BUNDLED:
        pytest.skip("symgnn_pe is not bundled")
    model = load_model(PACKAGE_MODELS_DIR / "symgnn_pe.pt")
    res = evaluate_files(model, [str(require_data(VALID))], rotations=2)
    print(
        f"symgnn_pe: largest spread over 2 rotations/reflections {res['rotations']['spread_max_eV']:.3g} eV"
    )
    assert res["rotations"]["spread_max_eV"] < 1e-5
