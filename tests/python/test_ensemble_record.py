"""The recorded ensembles (training/runs/*/calibration.json, written by
training/studies/calibrate_ensemble.py with its calibration.md): the research log
(docs/model_selection.md, where these ensembles were studied) shows every calibration table that
was written, and every committed ensemble file (``ensemble.pt`` beside a
calibration.json) still gives that JSON's numbers on the validation glass. Expected values come
from the generated JSON, the runs from what is in the folder: nothing here is a list of names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ..paths import REPO, VALID, require_data

RUNS = REPO / "training" / "runs"
#: runs with a calibration table, and those whose ensemble file is committed beside it
CALIBRATED = sorted(p.parent.name for p in RUNS.glob("*/calibration.md"))
ENSEMBLES = sorted(
    p.parent.name for p in RUNS.glob("*/ensemble.pt") if (p.parent / "calibration.json").exists()
)
CARD = REPO / "docs" / "model_selection.md"


def _calibration_table(run: Path) -> list[str]:
    """The rows of the first table of calibration.md (the structures and their spread)."""
    lines = (run / "calibration.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| structure |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_there_are_records() -> None:
    assert CALIBRATED and ENSEMBLES, f"no calibration.md or ensemble.pt under {RUNS}"


@pytest.mark.parametrize("name", CALIBRATED)
def test_card_shows_the_written_calibration(name: str) -> None:
    card = CARD.read_text()
    rows = _calibration_table(RUNS / name)
    assert len(rows) >= 3
    for row in rows:
        assert row in card, (
            f"docs/model_selection.md lacks this row of {name}/calibration.md:\n{row}"
        )


@pytest.mark.slow
@pytest.mark.parametrize("name", ENSEMBLES)
def test_ensemble_file_reproduces_the_relaxed_row(name: str) -> None:
    import ase.io

    from symgnn_ase.data.graph import graph_from_atoms
    from symgnn_ase.export import load_model

    run = RUNS / name
    record = json.loads((run / "calibration.json").read_text())["relaxed"]
    model = load_model(run / "ensemble.pt")
    assert model.is_ensemble and model.ensemble_size == len(record["pearson_members"])
    atoms = ase.io.read(require_data(VALID))
    g = graph_from_atoms(atoms, model.r_max, model.type_names, model.dtype)
    with torch.inference_mode():
        each = model.module.forward_members(g.species, g.edge_index, g.edge_vec).double().numpy()
        both = model.module.forward_std(g.species, g.edge_index, g.edge_vec).double().numpy()
    y = np.asarray(atoms.arrays["energy_barrier"], dtype=np.float64)
    mean, std = each.mean(0), each.std(0, ddof=1)
    # the file's own mean and std are the members' (its std times the file's std_scale)
    scale = float(model.module.std_scale)
    assert np.abs(both[0] - mean).max() < 1e-5 and np.abs(both[1] - std * scale).max() < 1e-5
    assert abs(float(np.corrcoef(mean, y)[0, 1]) - record["pearson_mean"]) < 1e-5
    members = [float(np.corrcoef(m, y)[0, 1]) for m in each]
    assert np.allclose(members, record["pearson_members"], atol=1e-5)
    assert abs(float(std.mean()) - record["std_mean"]) < 1e-5
    z = np.abs(y - mean) / std
    assert abs(float(np.mean(z <= 1)) - record["raw"]["within_1sigma"]) < 1e-3
    assert abs(float(np.mean(z <= 2)) - record["raw"]["within_2sigma"]) < 1e-3
