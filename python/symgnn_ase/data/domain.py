"""Whether a structure is like the glasses the models were trained on, for a warning.

Every bundled model was trained on 8000-atom Cu64Zr36 glasses (relaxed and at 300-700 K),
where each atom has 24 to 40 neighbours within 5 Å. A structure of a few atoms, a vacuum
cluster, or a compressed box gives numbers that are extrapolations (the default predicts
-3.8 eV for a 3-atom structure): :func:`outside_training` says so in one line, and the
calculator (hence ``symgnn predict``) logs it once per calculator.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_ATOMS", "TRAINING_NEIGHBORS", "neighbor_range", "outside_training"]

#: fewer atoms than this is no glass sample (the training glasses have 8000)
MIN_ATOMS = 100
#: neighbours per atom within 5 Å in the training glasses (min, max over every atom)
TRAINING_NEIGHBORS = (24, 40)
#: how far outside that range counts as far: below half the minimum, above 1.5 the maximum
_FAR = (0.5, 1.5)


def neighbor_range(r_max: float) -> tuple[float, float]:
    """The neighbour counts within ``r_max`` that are not far from the training glasses'
    (those within 5 Å scaled by the volume, ``(r_max / 5)^3``)."""
    scale = (float(r_max) / 5.0) ** 3
    lo, hi = TRAINING_NEIGHBORS
    return lo * scale * _FAR[0], hi * scale * _FAR[1]


def outside_training(n_atoms: int, receivers: np.ndarray, r_max: float) -> str | None:
    """One line saying why a structure of ``n_atoms`` with the neighbour list whose receiving
    atoms are ``receivers`` (one entry per edge) is far outside the training data; None when
    it is not."""
    counts = np.bincount(np.asarray(receivers, dtype=np.int64), minlength=n_atoms)
    lo, hi = neighbor_range(r_max)
    reasons = []
    if n_atoms < MIN_ATOMS:
        reasons.append(f"{n_atoms} atom(s)")
    if n_atoms and (counts.min() < lo or counts.max() > hi):
        odd = int(((counts < lo) | (counts > hi)).sum())
        reasons.append(
            f"{odd} atom(s) with a neighbour count within {r_max:g} Å outside {lo:.0f} to "
            f"{hi:.0f} (here {int(counts.min())} to {int(counts.max())})"
        )
    if not reasons:
        return None
    return (
        f"this structure is far outside the models' training data (8000-atom Cu-Zr glasses, "
        f"{TRAINING_NEIGHBORS[0]} to {TRAINING_NEIGHBORS[1]} neighbours per atom within 5 Å): "
        f"{'; '.join(reasons)}; its barriers are extrapolations, not predictions to trust"
    )
