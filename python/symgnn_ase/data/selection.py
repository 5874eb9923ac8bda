"""Checks of what selects and parses frames (``--index``, ``--format``), before any file is read:
a bad value is a ValueError naming the option, the value and the accepted forms (ASE would
otherwise fail deep inside its reader with a message that names neither)."""

from __future__ import annotations

import re

__all__ = ["check_format", "check_index"]

_INT = r"[+-]?\d+"
_SLICE = re.compile(rf"^({_INT})?:({_INT})?(:({_INT})?)?$")


def check_index(index: str | int, option: str = "--index") -> str:
    """``index`` in ase.io syntax (``0``, ``-1``, ``:``, ``2:10:2``); returned as a string."""
    text = str(index).strip()
    if re.fullmatch(_INT, text):
        return text
    m = _SLICE.fullmatch(text)
    if m is not None:
        if m.group(4) is not None and int(m.group(4)) == 0:
            raise ValueError(f"{option} {index!r}: the step of a slice must not be 0")
        return text
    raise ValueError(
        f"{option} must be a frame number or a slice in ase.io syntax (0, -1, :, 2:10:2), "
        f"got {index!r}"
    )


def check_format(fmt: str | None, option: str = "--format") -> str | None:
    """``fmt`` must be None (guess) or an ase.io format name."""
    if fmt is None:
        return None
    from ase.io.formats import ioformats

    if fmt not in ioformats:
        close = sorted(name for name in ioformats if name.startswith(fmt[:3].lower()))[:6]
        hint = f" (close: {', '.join(close)})" if close else ""
        raise ValueError(
            f"{option} {fmt!r} is not an ase.io format{hint}; e.g. extxyz, lammps-data, "
            "lammps-dump-text, vasp, cif"
        )
    return fmt
