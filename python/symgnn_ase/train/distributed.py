"""Training on several processes: ``torchrun --nproc_per_node N -m symgnn_ase train CONFIG``.

torch.distributed, backend ``gloo`` (the training loop runs on the CPU; ``SYMGNN_DIST_BACKEND``
names another, e.g. ``nccl`` for tensors on GPUs). The run is
defined without the processes: an optimizer step averages the gradients of
``optim.frames_per_step`` frames (S), taken in the epoch's seeded order. With N processes
the S frames of a step are dealt out between them (frame s of the step to rank s mod N), each
process sums the gradients of its frames, the sums are all-reduced and divided by the step's
frame count, so every process takes the same step as one process would. Every process holds
the whole dataset, draws the same epoch order and the same per-frame random numbers (position
noise, SymGNN's sampled transforms) whichever frames it runs; the weights stay identical
on all processes. Rank 0 validates, writes every file of the run folder and broadcasts its
decisions (score, stop); ``last.pt`` resumes under any number of processes.

Without torchrun (``WORLD_SIZE`` unset or 1) nothing here talks to anything: :data:`SINGLE`.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from typing import Any

import torch

logger = logging.getLogger(__name__)

__all__ = ["Dist", "SINGLE", "setup", "BatchNormReplay", "BACKEND_ENV"]

#: environment variable choosing the torch.distributed backend (default: gloo on CPU)
BACKEND_ENV = "SYMGNN_DIST_BACKEND"


class Dist:
    """This process's place in the run: ``rank`` of ``world`` processes (1: no collectives)."""

    def __init__(self, rank: int = 0, world: int = 1, owns_group: bool = False) -> None:
        self.rank = rank
        self.world = world
        self.owns_group = owns_group

    @property
    def main(self) -> bool:
        """Rank 0: validates, writes the run folder, logs, draws the progress bar."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def my_slots(self, n: int) -> list[int]:
        """The positions (of ``n`` frames in a step) this process runs."""
        return list(range(self.rank, n, self.world))

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every process."""
        if not self.active:
            return obj
        box = [obj if self.main else None]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, in rank order (on every process)."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def sum_gradients(self, params: list[torch.nn.Parameter], extra: torch.Tensor) -> torch.Tensor:
        """All-reduce (sum) the gradients of ``params`` together with ``extra`` (a small
        tensor, e.g. the step's loss sum) in one flat buffer; returns the summed ``extra``.

        A parameter that no process has a gradient for keeps ``grad = None`` (as in one
        process, so the optimizer skips it the same way); one that only some processes have
        a gradient for gets their sum."""
        if not self.active:
            return extra
        dtype = params[0].dtype if params else extra.dtype
        parts = []
        for p in params:
            g = p.grad if p.grad is not None else torch.zeros_like(p)
            parts.append(g.reshape(-1).to(dtype))
        has = torch.tensor([p.grad is not None for p in params], dtype=dtype)
        flat = torch.cat([*parts, has, extra.reshape(-1).to(dtype)])
        torch.distributed.all_reduce(flat)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset : offset + n].view_as(p).clone()
            offset += n
        has = flat[offset : offset + len(params)]
        for p, h in zip(params, has.tolist(), strict=True):
            if h == 0:
                p.grad = None
        return flat[offset + len(params) :].clone()

    def broadcast_state(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers on every process."""
        if not self.active:
            return
        with torch.no_grad():
            for t in module.state_dict().values():
                torch.distributed.broadcast(t, src=0)

    def close(self) -> None:
        if self.owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


SINGLE = Dist()


class BatchNormReplay:
    """Batch-norm running statistics of a multi-frame step, the same on every process.

    In training mode a batch-norm layer normalizes with the frame's own statistics (so the
    gradients need nothing here) and moves its running statistics towards them, frame after
    frame. A process runs only some of the step's frames, so instead every frame's statistics
    are recorded (``frame(slot)``: momentum 1 for that forward, the running buffers then hold
    exactly the frame's statistics), shared between the processes, and the running update
    ``r <- (1 - momentum) r + momentum b`` is replayed over the step's frames in order
    (``finish``). Layers in eval mode (``optim.freeze_norm``) are left alone.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.layers = [
            m
            for m in model.modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
            and m.training
            and m.track_running_stats
        ]
        for m in self.layers:
            if m.momentum is None:
                raise ValueError(
                    "frames_per_step > 1 or several processes: batch-norm layers need a "
                    "momentum (cumulative averaging, momentum=None, is not supported)"
                )
        self.width = sum(2 * m.num_features for m in self.layers)
        self.rows: torch.Tensor | None = None
        self.start: list[tuple[torch.Tensor, torch.Tensor]] = []

    def begin(self, n_frames: int) -> None:
        """Before the step's first frame."""
        if not self.layers:
            return
        self.start = [(m.running_mean.clone(), m.running_var.clone()) for m in self.layers]
        dtype = self.layers[0].running_mean.dtype
        self.rows = torch.zeros((n_frames, self.width), dtype=dtype)
        self.momenta = [m.momentum for m in self.layers]
        self._tracked0 = {
            id(m): 0 if m.num_batches_tracked is None else int(m.num_batches_tracked)
            for m in self.layers
        }
        for m in self.layers:
            m.momentum = 1.0

    def frame(self, slot: int) -> None:
        """After the forward of the step's frame ``slot`` on this process."""
        if not self.layers:
            return
        parts = []
        for m in self.layers:
            parts += [m.running_mean.detach().reshape(-1), m.running_var.detach().reshape(-1)]
        self.rows[slot] = torch.cat(parts).to(self.rows.dtype)

    def finish(self, dist: Dist) -> None:
        """After the step's frames: share the rows and replay the running updates in order."""
        if not self.layers:
            return
        rows = self.rows
        if dist.active:
            torch.distributed.all_reduce(rows)  # each row comes from one process, zeros elsewhere
        n = rows.shape[0]
        with torch.no_grad():
            offset = 0
            for m, momentum, (mean0, var0) in zip(
                self.layers, self.momenta, self.start, strict=True
            ):
                m.momentum = momentum
                c = m.num_features
                mean, var = mean0, var0
                for f in range(n):
                    b_mean = rows[f, offset : offset + c]
                    b_var = rows[f, offset + c : offset + 2 * c]
                    mean = mean * (1.0 - momentum) + b_mean * momentum
                    var = var * (1.0 - momentum) + b_var * momentum
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                offset += 2 * c
                if m.num_batches_tracked is not None:
                    # every process counted its own frames; the step counts all of them
                    m.num_batches_tracked.copy_(
                        m.num_batches_tracked.new_tensor(int(self._tracked0[id(m)]) + n)
                    )
        self.rows = None


def setup() -> Dist:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...),
    or :data:`SINGLE` outside torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return SINGLE
    if not torch.distributed.is_available():
        raise RuntimeError(f"WORLD_SIZE={world} (torchrun) but this torch has no torch.distributed")
    owns = False
    if not torch.distributed.is_initialized():
        backend = os.environ.get(BACKEND_ENV) or "gloo"
        torch.distributed.init_process_group(backend=backend, timeout=_dt.timedelta(minutes=30))
        owns = True
    rank = torch.distributed.get_rank()
    world = torch.distributed.get_world_size()
    if rank == 0:
        logger.info(
            "distributed training: %d processes, backend %s",
            world,
            torch.distributed.get_backend(),
        )
    return Dist(rank, world, owns)
