"""``symgnn compose RECIPE.toml -o M.pt`` and ``symgnn info M.pt``: a composed model file from
a declarative recipe, the recipe kept in the file's ``info`` (``symgnn_ase/compose/recipe.py``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from symgnn_ase.cli import main
from symgnn_ase.compose.ensemble import export_ensemble
from symgnn_ase.compose.recipe import RECIPE_KEY, compose_recipe, describe_model
from symgnn_ase.data.graph import graph_from_atoms
from symgnn_ase.data.io import file_sha256
from symgnn_ase.export import load_model
from symgnn_ase.testing import make_tiny_members, random_glass

ENSEMBLE = """\
# two tiny members beside the recipe
wrapper = "ensemble"
description = "a test ensemble"
members = ["members/length.pt", { path = "members/symgnn.pt" }]
std_scale = 1.5
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A recipe folder: ``members/`` with two tiny models, and ``ens.toml`` naming them."""
    root = tmp_path_factory.mktemp("recipes")
    make_tiny_members(root / "members", kinds=("length", "symgnn"), seed=40)
    (root / "ens.toml").write_text(ENSEMBLE)
    return root


def _outputs(path: Path) -> torch.Tensor:
    model = load_model(path)
    g = graph_from_atoms(random_glass(80, seed=6), model.r_max, model.type_names, model.dtype)
    with torch.no_grad():
        return model.module.forward_std(g.species, g.edge_index, g.edge_vec)


def test_round_trip_info_prints_the_recipe(folder, tmp_path, capsys) -> None:
    out = tmp_path / "ens.pt"
    assert main(["compose", str(folder / "ens.toml"), "-o", str(out)]) == 0
    record = load_model(out).info[RECIPE_KEY]
    assert record["text"] == ENSEMBLE and record["file"] == "ens.toml"
    assert record["sha256"] == file_sha256(folder / "ens.toml")
    assert [row["member"] for row in record["inputs"]] == ["members/length.pt", "members/symgnn.pt"]
    assert record["inputs"][0]["sha256"] == file_sha256(folder / "members" / "length.pt")
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "kind: ensemble" in printed and "ensemble: 2 members, std_scale 1.5" in printed
    for line in ENSEMBLE.splitlines():
        assert f"  | {line}".rstrip() in printed
    assert main(["info", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[RECIPE_KEY]["text"] == ENSEMBLE


def test_recipe_ensemble_equals_symgnn_ensemble(folder, tmp_path) -> None:
    """The same members, the same std_scale: the same numbers as `symgnn ensemble`."""
    by_recipe = compose_recipe(folder / "ens.toml", tmp_path / "r.pt")
    members = [str(folder / "members" / f"{k}.pt") for k in ("length", "symgnn")]
    by_command = export_ensemble(members, tmp_path / "c.pt", std_scale=1.5)
    assert torch.equal(_outputs(by_recipe), _outputs(by_command))
    a, b = load_model(by_recipe).info, load_model(by_command).info
    assert a["members"] == b["members"] and a["std_scale"] == b["std_scale"] == 1.5


def test_relative_paths_are_read_from_the_recipe_folder(folder, tmp_path, monkeypatch) -> None:
    """From another current directory the members are still found beside the recipe; a member
    that exists only relative to the current directory is not."""
    elsewhere = tmp_path / "cwd"
    shutil.copytree(folder / "members", elsewhere / "members")
    monkeypatch.chdir(elsewhere)
    out = compose_recipe(folder / "ens.toml", "out.pt")
    assert (elsewhere / "out.pt").is_file() and load_model(out).ensemble_size == 2
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (lonely / "ens.toml").write_text(ENSEMBLE)
    with pytest.raises(ValueError, match=r"key `members\[0\]`: member 'members/length.pt' not"):
        compose_recipe(lonely / "ens.toml", "out2.pt")
    assert not (elsewhere / "out2.pt").exists()


def test_smooth_with_relax_and_a_single_member(folder, tmp_path, capsys) -> None:
    (folder / "smooth.toml").write_text(
        'wrapper = "smooth"\nmembers = ["members/length.pt"]\nlength = 2.5\n'
        'cutoff = "polynomial"\n[relax]\nsteps = 3\nalpha = 0.1\n'
    )
    out = compose_recipe(folder / "smooth.toml", tmp_path / "s.pt")
    model = load_model(out)
    assert model.info["kind"] == "smoothed" and model.info["smooth"]["length"] == 2.5
    assert (model.relax.steps, model.relax.alpha, model.relax.cap) == (3, 0.1, 0.3)
    (folder / "none.toml").write_text('wrapper = "none"\nmembers = ["members/symgnn.pt"]\n')
    copy = load_model(compose_recipe(folder / "none.toml", tmp_path / "n.pt"))
    assert copy.info[RECIPE_KEY]["file"] == "none.toml" and copy.info["kind"] == "symgnn"
    assert describe_model(folder / "members" / "length.pt")[-1] == (
        "recipe: none recorded (not made by `symgnn compose`)"
    )


BAD = [
    ('wrapper = "stack"\nmembers = ["members/length.pt"]\n', r"key `wrapper` must be one of"),
    ('members = ["members/length.pt"]\n', r"key `wrapper` is missing"),
    (ENSEMBLE + "lenght = 3\n", r"unknown key `lenght` for wrapper 'ensemble'"),
    (ENSEMBLE.replace("1.5", '"1.5"'), r"key `std_scale` must be a number, got '1.5'"),
    (ENSEMBLE.replace("1.5", "-1"), r"key `std_scale`: std_scale must be a finite number > 0"),
    (ENSEMBLE.replace("members/symgnn.pt", "members/nope.pt"), r"key `members\[1\]`: member"),
    ('wrapper = "ensemble"\nmembers = ["members/length.pt"]\n', r"at least 2 .* got 1"),
    ('wrapper = "smooth"\nmembers = ["members/length.pt"]\n', r"key `length` is missing"),
    ('wrapper = "smooth"\nmembers = ["members/length.pt"]\nlength = true\n', r"must be a number"),
    ('wrapper = "ensemble"\nmembers = "members/length.pt"\n', r"key `members` must be a non-em"),
    ('wrapper = "ensemble"\nmembers = [3, 4]\n', r"key `members\[0\]` must be a path"),
    (ENSEMBLE + "[relax]\nalpha = 0.1\n", r"key `relax.steps` is missing"),
    (ENSEMBLE + "[relax]\nsteps = 2.5\n", r"key `relax.steps` must be an integer, got 2.5"),
    (ENSEMBLE + "[relax]\nsteps = 2\nkick = 1\n", r"unknown key `relax.kick`"),
    (ENSEMBLE + "[relax]\nsteps = 2\ncap = 0\n", r"key `relax`: relax cap must be a finite"),
    ("wrapper = \n", r"not valid TOML"),
    ('wrapper = "none"\nmembers = [{ bundled = "no_such_model" }]\n', r"key `members\[0\]`: model"),
    ('wrapper = "none"\nmembers = ["members/length.pt"]\nstd_scale = 2\n', r"applies to a run"),
]


@pytest.mark.parametrize("text,message", BAD)
def test_bad_recipes_are_one_line_errors(folder, tmp_path, capsys, text, message) -> None:
    recipe = folder / "bad.toml"
    recipe.write_text(text)
    out = tmp_path / "bad.pt"
    with pytest.raises(ValueError, match=message) as info:
        compose_recipe(recipe, out)
    assert "\n" not in str(info.value) and str(recipe) in str(info.value)
    assert main(["compose", str(recipe), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("symgnn compose: error: recipe ") and "\n" not in err
    assert not out.exists()


def test_never_overwrites_an_input(folder, tmp_path) -> None:
    member = folder / "members" / "length.pt"
    before = file_sha256(member)
    for output in (member, folder / "ens.toml"):
        with pytest.raises(ValueError):
            compose_recipe(folder / "ens.toml", output)
    assert file_sha256(member) == before and (folder / "ens.toml").read_text() == ENSEMBLE


def test_the_default_recipe_makes_the_bundled_default(tmp_path) -> None:
    """training/recipes/default.toml: the module, metadata and numbers of models/default.pt."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "training/runs/default_shallow_readout/best.pt").is_file():
        pytest.skip("training/runs/default_shallow_readout/best.pt is not in this checkout")
    made = load_model(compose_recipe(root / "training/recipes/default.toml", tmp_path / "d.pt"))
    shipped = load_model("default")
    assert made.relax == shipped.relax and made.ensemble_size == shipped.ensemble_size
    assert made.info["std_scale"] == shipped.info["std_scale"]
    mine, theirs = made.module.state_dict(), shipped.module.state_dict()
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert torch.equal(_outputs(made.path), _outputs(shipped.path))
