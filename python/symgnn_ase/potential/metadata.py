"""Parsing of the JSON-object metadata entries of a model file (``relax``, ``node_inputs``).

One parser for both, so that a malformed entry is refused in the same words whichever it is.
This module imports no torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["parse_json_entry"]

T = TypeVar("T")


def parse_json_entry(
    make: Callable[..., T],
    key: str,
    text: str | bytes,
    fields: tuple[str, ...],
    required: tuple[str, ...],
    example: str,
    source: str | os.PathLike | None = None,
) -> T:
    """``make(**entries)`` for the metadata entry ``key`` whose value is ``text``, a JSON
    object with entries among ``fields``, ``required`` among them. A malformed value (not a
    JSON object, unknown or missing entries, or one ``make`` refuses with a ValueError) is a
    ValueError naming the key, what it must be and the value (and ``source``, the file, when
    given); ``example`` shows a good value."""
    where = f"{source}: " if source is not None else ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")

    def bad(why: str) -> ValueError:
        return ValueError(f"{where}metadata `{key}` {why}, got {text!r}")

    try:
        obj: Any = json.loads(text)
    except ValueError:
        raise bad("must be a JSON object like " + example) from None
    if not isinstance(obj, dict):
        raise bad("must be a JSON object like " + example)
    unknown = sorted(set(obj) - set(fields))
    if unknown:
        raise bad(f"has unknown entries {unknown} (known: {list(fields)})")
    missing = [k for k in required if k not in obj]
    if missing:
        raise bad(f"lacks {missing}")
    try:
        return make(**{k: obj[k] for k in fields if k in obj})
    except ValueError as exc:
        raise bad(f"is invalid ({exc})") from None
