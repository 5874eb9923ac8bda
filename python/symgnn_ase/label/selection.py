"""Which atoms to label: ``10,20``, ``0-99`` (inclusive), ``random:30`` (seeded), ``all``.

Parts are comma-separated and may be mixed (``5,10-12,random:3``); a random part draws from
the atoms not named otherwise, with ``numpy.random.default_rng(seed)``, and ``random:N:El``
draws only atoms of element ``El``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["parse_selection"]


def parse_selection(
    text: str, n_atoms: int, seed: int = 0, symbols: Sequence[str] | None = None
) -> np.ndarray:
    """Sorted unique atom indices of ``text`` for a glass of ``n_atoms`` atoms."""
    spec = str(text).strip()
    if not spec:
        raise ValueError("atom selection is empty (use e.g. `10,20`, `0-99`, `random:30`)")
    fixed: set[int] = set()
    randoms: list[tuple[int, str | None]] = []
    for part in (p.strip() for p in spec.split(",")):
        if part == "all":
            fixed.update(range(n_atoms))
        elif part.startswith("random:"):
            randoms.append(_random_part(part, spec, symbols))
        elif "-" in part.lstrip("-"):
            lo, hi = (_index(v, part, spec) for v in part.split("-", 1))
            if hi < lo:
                raise ValueError(f"atom selection {spec!r}: range {part!r} runs backwards")
            _check_range(hi, spec, n_atoms)
            fixed.update(range(lo, hi + 1))
        else:
            fixed.add(_check_range(_index(part, part, spec), spec, n_atoms))
    rng = np.random.default_rng(seed)
    chosen = set(fixed)
    for count, element in randoms:
        pool = [i for i in range(n_atoms) if i not in chosen]
        if element is not None:
            pool = [i for i in pool if symbols is not None and symbols[i] == element]
        if count > len(pool):
            what = f"{element} atoms" if element else "atoms"
            raise ValueError(
                f"atom selection {spec!r}: random:{count} asks for more {what} than the "
                f"{len(pool)} left to choose from"
            )
        chosen.update(int(i) for i in rng.choice(pool, size=count, replace=False))
    return np.array(sorted(chosen), dtype=np.int64)


def _index(value: str, part: str, spec: str) -> int:
    try:
        index = int(value)
    except ValueError:
        raise ValueError(
            f"atom selection {spec!r}: {part!r} is not an index, a range `a-b` or `random:N`"
        ) from None
    if index < 0:
        raise ValueError(f"atom selection {spec!r}: index {index} is negative")
    return index


def _check_range(index: int, spec: str, n_atoms: int) -> int:
    if index >= n_atoms:
        raise ValueError(
            f"atom selection {spec!r}: index {index} is out of range for a glass of {n_atoms} "
            f"atoms (indices 0-{n_atoms - 1})"
        )
    return index


def _random_part(part: str, spec: str, symbols: Sequence[str] | None) -> tuple[int, str | None]:
    fields = part.split(":")
    element = fields[2] if len(fields) == 3 else None
    try:
        count = int(fields[1])
        if len(fields) > 3 or count < 1:
            raise ValueError
    except (ValueError, IndexError):
        raise ValueError(
            f"atom selection {spec!r}: {part!r} must be `random:N` or `random:N:Element` with N >= 1"
        ) from None
    if element is not None and (symbols is None or element not in set(symbols)):
        raise ValueError(f"atom selection {spec!r}: the glass has no {element!r} atoms")
    return count, element
