"""Neighbor lists from the C++ core (``symgnn_ase._core``).

The list is full and directed: for every pair of atoms closer than ``cutoff``
both ``i <- j`` and ``j <- i`` appear, once per periodic image. Edges are sorted
by ``(i, j, S)`` and ``D = positions[j] - positions[i] + S @ cell``. See ``docs/contracts.md``.
"""

from __future__ import annotations

import logging
import math
import numbers
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import ase

__all__ = ["neighbors", "atoms_neighbors"]

logger = logging.getLogger(__name__)

NeighborArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _core() -> Any:
    try:
        from . import _core as core
    except ImportError as exc:  # pragma: no cover - only without a build
        raise ImportError(
            "symgnn_ase._core (the C++ neighbor list) is not built: run `make build` "
            "(pip install --no-build-isolation -e .) in the repository"
        ) from exc
    return core


def _as_float_array(value: Any, name: str, shape: tuple[int | None, ...]) -> np.ndarray:
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be converted to an array: {exc}") from exc
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if array.ndim != len(shape) or any(
        want is not None and got != want for got, want in zip(array.shape, shape, strict=False)
    ):
        want_s = "(" + ", ".join("n" if w is None else str(w) for w in shape) + ")"
        raise ValueError(f"{name} must have shape {want_s}, got shape {array.shape}")
    return np.ascontiguousarray(array, dtype=np.float64)


def _as_pbc(pbc: Any) -> np.ndarray:
    array = np.asarray(pbc)
    if array.ndim == 0:
        array = np.repeat(array, 3)
    if array.shape != (3,):
        raise ValueError(f"pbc must be a bool or 3 bools, got shape {array.shape}")
    if array.dtype != np.bool_:
        if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.bool_)):
            raise TypeError(f"pbc must hold booleans, got dtype {array.dtype}")
        if not np.all((array == 0) | (array == 1)):
            raise ValueError(f"pbc must hold booleans (or 0/1), got {array.tolist()}")
    return np.ascontiguousarray(array, dtype=np.bool_)


def neighbors(
    positions: Any,
    cell: Any,
    pbc: Any,
    cutoff: float,
    n_receivers: int | None = None,
    n_threads: int = 0,
) -> NeighborArrays:
    """Full directed neighbor list within ``cutoff``.

    Parameters
    ----------
    positions
        ``[N, 3]`` Cartesian positions (Å); may lie outside the cell.
    cell
        ``[3, 3]`` cell whose rows are the lattice vectors, or None when no axis
        is periodic. Rows of non-periodic axes are ignored.
    pbc
        Periodicity of the three cell axes (a bool or three bools).
    cutoff
        Pairs with ``|D| < cutoff`` are listed, with every periodic image.
    n_receivers
        Only atoms ``i < n_receivers`` receive edges (all atoms send).
        None means all atoms.
    n_threads
        CPU threads; 0 uses ``SYMGNN_NUM_THREADS``/``OMP_NUM_THREADS`` or the
        number of cores. The result does not depend on it.

    Returns
    -------
    i, j, S, D
        ``i`` (receiver) and ``j`` (sender) int64 ``[E]``, integer shifts ``S``
        int32 ``[E, 3]`` and vectors ``D = positions[j] - positions[i] + S @ cell``
        float64 ``[E, 3]``, sorted by ``(i, j, S)``.

    Raises
    ------
    ValueError
        Bad shapes, non-finite positions, a non-positive or non-finite cutoff,
        a singular cell on a periodic axis, ``n_receivers`` out of range.
    TypeError
        Non-numeric input.
    """
    pos = _as_float_array(positions, "positions", (None, 3))
    pbc_arr = _as_pbc(pbc)
    cell_arr: np.ndarray | None
    if cell is None:
        if pbc_arr.any():
            raise ValueError(f"cell is None but pbc = {pbc_arr.tolist()} has a periodic axis")
        cell_arr = None
    else:
        cell_arr = _as_float_array(cell, "cell", (3, 3))
    if isinstance(cutoff, bool) or not isinstance(cutoff, numbers.Real):
        raise TypeError(f"cutoff must be a real number, got {type(cutoff).__name__}")
    cutoff = float(cutoff)
    if not math.isfinite(cutoff) or cutoff <= 0.0:
        raise ValueError(f"cutoff must be a finite number > 0, got {cutoff}")
    n_atoms = pos.shape[0]
    if n_receivers is None:
        n_recv = -1
    else:
        if isinstance(n_receivers, bool) or not isinstance(n_receivers, numbers.Integral):
            raise TypeError(f"n_receivers must be an int or None, got {type(n_receivers).__name__}")
        n_recv = int(n_receivers)
        if n_recv < 0 or n_recv > n_atoms:
            raise ValueError(f"n_receivers must be in [0, n_atoms={n_atoms}], got {n_recv}")
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral):
        raise TypeError(f"n_threads must be an int, got {type(n_threads).__name__}")
    result = _core().neighbors(pos, cell_arr, pbc_arr, cutoff, n_recv, int(n_threads))
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "neighbors: %d atoms, cutoff %.3f, pbc %s -> %d edges",
            n_atoms,
            cutoff,
            pbc_arr.tolist(),
            len(result[0]),
        )
    return result


def atoms_neighbors(
    atoms: ase.Atoms, cutoff: float, n_receivers: int | None = None, n_threads: int = 0
) -> NeighborArrays:
    """:func:`neighbors` for an :class:`ase.Atoms` (its positions, cell and pbc)."""
    try:
        positions = atoms.get_positions()
        cell = atoms.get_cell().array
        pbc = atoms.get_pbc()
    except AttributeError as exc:
        raise TypeError(f"atoms must be an ase.Atoms, got {type(atoms).__name__}") from exc
    return neighbors(positions, cell, pbc, cutoff, n_receivers=n_receivers, n_threads=n_threads)
