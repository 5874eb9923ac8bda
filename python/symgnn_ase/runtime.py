"""What the library sets in the process it runs in, and for how long.

**Thread counts** (:func:`torch_threads`): torch's intra-op thread count is process-wide;
library code that changes it (the calculator's ``n_threads``, ``symgnn explain --threads``, a
training config's ``threads``) does so inside :func:`torch_threads`, which puts the previous
count back on the way out.

**Opt-in bitwise reproducibility across thread counts** (``SYMGNN_REPRODUCIBLE=1``,
:func:`apply_from_environment`, run on ``import symgnn_ase``; this module imports no torch).

The promise without it (docs/contracts.md, "Determinism"): bitwise for the same input, build,
machine and thread count; within 1e-5 eV across thread counts, MPI layouts and CPUs. Two things in
torch break bits across thread counts on CPUs with AVX-512: ATen's vectorized element-wise
kernels (softplus, SiLU, ...) run the tail of each thread's chunk through a scalar path that
rounds differently, and MKL splits a matrix product over threads. ``SYMGNN_REPRODUCIBLE=1``, set
by the user before the process starts, makes ``import symgnn_ase`` (which does not import torch)
set

- ``ATEN_CPU_CAPABILITY=default``: ATen's non-vectorized kernels, the same arithmetic for every
  element whatever the chunking;
- ``MKL_CBWR=AUTO,STRICT``: MKL's conditional numerical reproducibility, strict mode;

each only where the user has not set it. Both are read by torch when it first runs an operator,
and are passed on to child processes (the ``lmp`` launcher imports this package before it
starts the LAMMPS binary, so the plugin's libtorch gets them too). The cost is speed: the
scalar kernels are slower (docs/environment.md gives a measurement).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator, MutableMapping

logger = logging.getLogger(__name__)

__all__ = ["ENV", "SETTINGS", "apply_from_environment", "requested", "torch_threads"]

#: the variable the user sets
ENV = "SYMGNN_REPRODUCIBLE"
#: what it sets, where unset
SETTINGS = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "AUTO,STRICT"}

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def requested(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Whether ``SYMGNN_REPRODUCIBLE`` asks for the reproducible mode; a value that is neither
    on (1/true/yes/on) nor off (0/false/no/off, unset) is a ValueError naming it."""
    value = environ.get(ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{ENV} must be 1 (on) or 0 (off), got {environ[ENV]!r}")


def apply_from_environment(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set :data:`SETTINGS` in ``environ`` where unset, if the user asked for it with
    ``SYMGNN_REPRODUCIBLE=1``; returns what was set. Does nothing otherwise. A setting the user
    gave another value is kept, with a warning; so is a torch that has already chosen its
    kernels (it was used before ``import symgnn_ase``)."""
    if not requested(environ):
        return {}
    done = {}
    for name, value in SETTINGS.items():
        current = environ.get(name)
        if current is None:
            environ[name] = done[name] = value
        elif current.strip().upper() != value.upper():
            warnings.warn(
                f"{ENV}=1: {name} is already set to {current!r} and is kept; bits across thread "
                f"counts are promised only with {name}={value}",
                stacklevel=2,
            )
    torch = sys.modules.get("torch")
    if torch is not None and environ is os.environ:
        # ATen picks its kernels when it first needs them; if torch ran before, it is too late
        capability = torch.backends.cpu.get_cpu_capability()
        if capability.upper() != "DEFAULT" and environ.get("ATEN_CPU_CAPABILITY") == "default":
            warnings.warn(
                f"{ENV}=1: torch already runs its {capability} kernels (it was used before "
                "symgnn_ase was imported); set ATEN_CPU_CAPABILITY=default and "
                "MKL_CBWR=AUTO,STRICT before the process starts instead",
                stacklevel=2,
            )
    return done


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
