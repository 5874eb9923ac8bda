"""Training configs: YAML or TOML, defaults filled in, unknown keys refused."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..nn.config import ModelConfig

__all__ = ["OPTIM_DEFAULTS", "TOP_KEYS", "load_config"]

OPTIM_DEFAULTS: dict[str, Any] = {
    "lr": 1e-3,
    "amsgrad": True,
    "weight_decay": 0.0,
    "grad_clip": 10.0,
    "epochs": 300,
    "patience": 60,
    "max_minutes": None,
    "lr_factor": 0.5,
    "lr_patience": 15,
    "min_lr": 1e-5,
    "compile": False,  # torch.compile the model (CPU: ~4x faster steps after a few minutes)
    # augmentation: every training step displaces each atom by N(0, position_noise^2) per
    # axis (Å) in the edge vectors (graph topology kept); 0 turns it off
    "position_noise": 0.0,
    # exponential moving average of the weights (decay per step; 0 turns it off): when on,
    # validation, best.pt and the exported model use the averaged weights
    "ema": 0.0,
}
TOP_KEYS = {"run_dir", "seed", "threads", "data", "model", "optim"}


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML or TOML training config and fill defaults; unknown keys are errors."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"training config not found: {path}")
    text = path.read_text()
    if path.suffix == ".toml":
        import tomllib

        cfg = tomllib.loads(text)
    else:
        import yaml

        cfg = yaml.safe_load(text)
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: a config must be a mapping, got {type(cfg).__name__}")
    unknown = sorted(set(cfg) - TOP_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown top-level key(s) {unknown}; known: {sorted(TOP_KEYS)}")
    data = cfg.get("data") or {}
    if not data.get("train") or not data.get("valid"):
        raise ValueError(f"{path}: `data.train` (a list of files) and `data.valid` are required")
    if isinstance(data["train"], str):
        data["train"] = [data["train"]]
    data.setdefault("label", "energy_barrier")
    optim = dict(OPTIM_DEFAULTS)
    bad = sorted(set(cfg.get("optim") or {}) - set(OPTIM_DEFAULTS))
    if bad:
        raise ValueError(f"{path}: unknown optim key(s) {bad}; known: {sorted(OPTIM_DEFAULTS)}")
    optim.update(cfg.get("optim") or {})
    ema = optim["ema"]
    if not isinstance(ema, (int, float)) or not 0.0 <= ema < 1.0:
        raise ValueError(f"{path}: optim.ema must be a decay in [0, 1), got {ema!r}")
    noise = optim["position_noise"]
    if not isinstance(noise, (int, float)) or not 0.0 <= noise < 1.0:
        raise ValueError(f"{path}: optim.position_noise must be in [0, 1) Å, got {noise!r}")
    model = ModelConfig.from_dict(cfg.get("model") or {}).to_dict()
    return {
        "run_dir": str(cfg.get("run_dir") or Path("runs") / path.stem),
        "seed": int(cfg.get("seed", 0)),
        "threads": int(cfg.get("threads", 0)),
        "data": data,
        "model": model,
        "optim": optim,
    }
