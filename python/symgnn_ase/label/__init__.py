"""Energy-barrier labels from scratch: ARTn saddle searches with LAMMPS, resumable, on local
processes or a Dask cluster (``symgnn label``; protocol and sources in docs/labels.md).

``label_glass(glass, potential, out, atoms="random:10")`` runs them; :class:`LabelConfig` holds
every protocol parameter.
"""

from __future__ import annotations

from .config import LabelConfig
from .runner import LabelResult, label_glass

__all__ = ["LabelConfig", "LabelResult", "label_glass"]
