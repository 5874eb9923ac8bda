"""Record what every bundled model scores on the validation glass: scores.json next to the models.

    python training/bundle_scores.py            # writes python/symgnn_ase/models/scores.json

Run it whenever the bundle changes (a model added, retrained, removed, or a new DEFAULT): it
evaluates every ``*.pt`` in the models folder on ``../shared/data/cuzr64/valid.extxyz`` (pooled
Pearson, RMSE, MAE, spread of the predictions; ``symgnn evaluate``'s metrics) and records for each its file name,
SHA-256, kind and size, plus the default's name and the validation file's SHA-256.
``tests/python/test_bundled_models.py`` reads its expected numbers from that file (never from
MODEL_CARD.md): it checks that the JSON covers exactly the bundled files, that each file is the
one scored (SHA-256), and that each still gives its recorded Pearson (within 1e-5). The
model card's first table quotes these numbers (4 decimals); a test checks that it does.

Options: ``--models DIR`` (default: the package's models folder), ``--valid FILE``, ``-o FILE``
(default: DIR/scores.json), ``--threads N`` (torch threads; default 1). About 1 minute of CPU
time per large model on 8000 atoms.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "python" / "symgnn_ase" / "models"
VALID = REPO.parent / "shared" / "data" / "cuzr64" / "valid.extxyz"
#: the file name the tests look for, next to the models
SCORES = "scores.json"
#: metrics of ``regression_metrics`` recorded per model
METRICS = ("pearson", "rmse", "mae", "pred_std")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _relative(path: Path) -> str:
    """``path`` relative to the repository where it is inside or beside it, else as given."""
    try:
        return os.path.relpath(path.resolve(), REPO)
    except ValueError:
        return str(path)


def score_models(models: Path, valid: Path) -> dict[str, Any]:
    """The scores.json record of every ``*.pt`` in ``models`` on ``valid``."""
    from symgnn_ase.export import load_model
    from symgnn_ase.train.evaluate import evaluate_files

    files = sorted(models.glob("*.pt"))
    if not files:
        raise FileNotFoundError(f"no *.pt model files in {models}")
    if not valid.is_file():
        raise FileNotFoundError(f"validation glass not found: {valid}")
    default = (models / "DEFAULT").read_text().split()[0] if (models / "DEFAULT").exists() else None
    record: dict[str, Any] = {
        "generated_by": "python training/bundle_scores.py",
        "valid": _relative(valid),
        "valid_sha256": sha256(valid),
        "default": Path(default).stem if default else None,
        "models": {},
    }
    for path in files:
        model = load_model(path)
        pooled = evaluate_files(model, [str(valid)])["pooled"]
        entry = {
            "file": path.name,
            "sha256": sha256(path),
            "kind": model.info.get("kind"),
            "ensemble_size": int(model.ensemble_size),
            "n_atoms": int(pooled["n"]),
            **{k: float(pooled[k]) for k in METRICS if k in pooled},
        }
        record["models"][path.stem] = entry
        print(f"{path.stem}: valid Pearson {entry['pearson']:.6f}", flush=True)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=MODELS, help="folder of the bundled models")
    parser.add_argument("--valid", type=Path, default=VALID, help="the validation glass")
    parser.add_argument(
        "-o", "--output", type=Path, help="output JSON (default MODELS/scores.json)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    import torch

    torch.set_num_threads(args.threads)
    try:
        record = score_models(args.models, args.valid)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    output = args.output or args.models / SCORES
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(output)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
