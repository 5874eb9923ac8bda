"""The one structure reader (symgnn_ase.data.io) that predict, explain, evaluate and training use."""

from __future__ import annotations

from pathlib import Path

import ase.io
import numpy as np
import pytest

from symgnn_ase.data import (
    guess_format,
    iter_structures,
    parse_types,
    read_structure,
    read_structures,
)
from symgnn_ase.testing import random_glass


@pytest.fixture()
def trajectory(tmp_path: Path) -> Path:
    path = tmp_path / "traj.extxyz"
    ase.io.write(path, [random_glass(20, seed=s) for s in range(3)], format="extxyz")
    return path


def test_frames_all_some_one(trajectory: Path) -> None:
    frames = read_structures(trajectory)
    assert len(frames) == 3
    assert [k for k, _ in iter_structures(trajectory, index="1:")] == [0, 1]
    last = read_structure(trajectory)
    np.testing.assert_array_equal(last.positions, frames[-1].positions)
    np.testing.assert_array_equal(
        read_structure(trajectory, index="0").positions, frames[0].positions
    )
    with pytest.raises(ValueError, match="selects 2 frames; select one frame"):
        read_structure(trajectory, index=":2")


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="structure file not found: .*missing.extxyz"):
        read_structures(tmp_path / "missing.extxyz")
    with pytest.raises(ValueError, match="is a directory"):
        read_structures(tmp_path)
    odd = tmp_path / "glass.unknownext"
    odd.write_text("not a structure\n")
    with pytest.raises(ValueError, match="pass --format"):
        read_structures(odd)


def test_lammps_types(tmp_path: Path) -> None:
    atoms = random_glass(30, seed=1)
    data = tmp_path / "glass.data"
    ase.io.write(data, atoms, format="lammps-data", specorder=["Cu", "Zr"], masses=True)
    assert guess_format(data) == "lammps-data"
    read = read_structure(data, types=["Cu", "Zr"])
    assert read.get_chemical_symbols() == atoms.get_chemical_symbols()
    with pytest.raises(ValueError, match="--types must name chemical elements"):
        read_structures(data, types=["Cu", "Xx"])
    with pytest.raises(ValueError, match="LAMMPS data and dump files only"):
        read_structures(tmp_path / "glass.data", fmt="extxyz", types=["Cu"])


def test_parse_types() -> None:
    assert parse_types("Cu,Zr") == ["Cu", "Zr"]
    assert parse_types(" Cu Zr ") == ["Cu", "Zr"]
    assert parse_types(None) is None
    with pytest.raises(ValueError, match="--types is empty"):
        parse_types(" , ")
