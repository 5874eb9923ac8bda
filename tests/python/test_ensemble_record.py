"""The recorded ensembles (training/runs/ensemble_length, ensemble_kinds): MODEL_CARD.md shows
the calibration tables that training/calibrate_ensemble.py wrote, and the committed edge-length
ensemble file still gives its table's numbers on the validation glass."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ..paths import REPO, VALID, missing_data_reason

RUNS = REPO / "training" / "runs"
RUN = RUNS / "ensemble_length"
CARD = REPO / "MODEL_CARD.md"


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


@pytest.mark.parametrize(
    "name", ["ensemble_length", "ensemble_kinds", "ensemble_md", "denoised_md", "smoothed_md"]
)
def test_card_shows_the_written_calibration(name: str) -> None:
    card = CARD.read_text()
    rows = _calibration_table(RUNS / name)
    assert len(rows) >= 3
    for row in rows:
        assert row in card, f"MODEL_CARD.md lacks this row of {name}/calibration.md:\n{row}"


def test_ensemble_file_reproduces_the_relaxed_row() -> None:
    if not VALID.exists():
        pytest.skip(missing_data_reason())
    import ase.io

    from symgnn_ase.data.graph import graph_from_atoms
    from symgnn_ase.export import load_model

    record = json.loads((RUN / "calibration.json").read_text())["relaxed"]
    model = load_model(RUN / "ensemble.pt")
    assert model.is_ensemble and model.ensemble_size == 3
    atoms = ase.io.read(VALID)
    g = graph_from_atoms(atoms, model.r_max, model.type_names, model.dtype)
    with torch.inference_mode():
        each = model.module.forward_members(g.species, g.edge_index, g.edge_vec).double().numpy()
        both = model.module.forward_std(g.species, g.edge_index, g.edge_vec).double().numpy()
    y = np.asarray(atoms.arrays["energy_barrier"], dtype=np.float64)
    mean, std = each.mean(0), each.std(0, ddof=1)
    # the file's own mean and std are the members' (std_scale 1 in this file)
    assert np.abs(both[0] - mean).max() < 1e-5 and np.abs(both[1] - std).max() < 1e-5
    assert abs(float(np.corrcoef(mean, y)[0, 1]) - record["pearson_mean"]) < 1e-5
    members = [float(np.corrcoef(m, y)[0, 1]) for m in each]
    assert np.allclose(members, record["pearson_members"], atol=1e-5)
    assert abs(float(std.mean()) - record["std_mean"]) < 1e-5
    z = np.abs(y - mean) / std
    assert abs(float(np.mean(z <= 1)) - record["raw"]["within_1sigma"]) < 1e-3
    assert abs(float(np.mean(z <= 2)) - record["raw"]["within_2sigma"]) < 1e-3
