"""Structures in, graphs out: one reader for every structure file (``io``), the model's graph
(``graph``), content hashes for provenance."""

from __future__ import annotations

from .io import (
    file_sha256,
    guess_format,
    iter_structures,
    parse_types,
    read_structure,
    read_structures,
)

__all__ = [
    "file_sha256",
    "guess_format",
    "iter_structures",
    "parse_types",
    "read_structure",
    "read_structures",
]
