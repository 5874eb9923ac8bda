"""Thread counts the library sets only for as long as it needs them.

torch's intra-op thread count is process-wide: library code that changes it
(the calculator's ``n_threads``, ``symgnn explain --threads``, a training
config's ``threads``) does so inside :func:`torch_threads`, which puts the
previous count back on the way out.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

logger = logging.getLogger(__name__)

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """torch uses ``n_threads`` intra-op threads inside the block and its previous count after
    it; None or 0 leaves the count alone."""
    if not n_threads:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    if previous == n_threads:
        yield
        return
    torch.set_num_threads(n_threads)
    logger.debug("torch threads %d -> %d", previous, n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
