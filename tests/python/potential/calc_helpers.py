"""What the calculator tests of the relax protocol and of node inputs share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from symgnn_ase.calculator import SymGNNCalculator


def barriers(model: str | Path, atoms: Any, **kwargs: Any) -> np.ndarray:
    """The per-atom barriers of ``model`` for ``atoms`` from a fresh calculator made with
    ``kwargs``, closed afterwards."""
    calc = SymGNNCalculator(str(model), **kwargs)
    try:
        return calc.get_property("energy_barriers", atoms)
    finally:
        calc.close()
