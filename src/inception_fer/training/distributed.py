"""Data-parallel training over processes and machines with ``torch.distributed``.

``torchrun`` starts the processes and sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; with a
``WORLD_SIZE`` above 1, ``fit`` joins the process group (NCCL on GPUs, gloo on the CPU) and trains
the model wrapped in ``DistributedDataParallel``. Without those variables, or with one process,
training is the single-process loop, unchanged.

How the work is split, so that results do not depend on the number of processes W:

* ``batch_size`` is the global batch: each process takes ``batch_size / W`` images per step and
  DDP averages the W gradients, which is the gradient of the global batch's mean loss (every
  process has the same number of images in every step).
* Every process draws the same permutation of the training set each epoch (the shuffling
  generator is seeded and advanced identically everywhere, as in one process) and takes its share
  exactly as ``DistributedSampler`` does: the permutation padded to a multiple of W by repeating
  its head, then every W-th index from its rank. The W shares of step k together are the k-th
  batch of a one-process run (plus, in the last step, the padding's repeats).
* Loss and accuracy, train and validation, are sums and counts all-reduced over the processes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from ..errors import InceptionFerError
from .device import resolve_device

DIST_BACKENDS = ("auto", "nccl", "gloo")
T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job: its rank among ``world_size`` and its GPU index."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """Whether there are other processes to synchronise with."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and logs."""
        return self.rank == 0

    @classmethod
    def from_env(cls) -> DistContext:
        """The context ``torchrun`` describes in ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``."""
        values = {}
        for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
            raw = os.environ.get(key, "")
            try:
                values[key] = int(raw) if raw else None
            except ValueError:
                raise InceptionFerError(
                    f"environment variable {key}={raw!r} is not an integer"
                ) from None
        world = values["WORLD_SIZE"] or 1
        rank = values["RANK"] or 0
        if world > 1 and values["RANK"] is None:
            raise InceptionFerError(
                f"WORLD_SIZE={world} is set but RANK is not: launch with torchrun"
            )
        if not 0 <= rank < world:
            raise InceptionFerError(f"RANK={rank} is not in [0, WORLD_SIZE={world})")
        return cls(rank=rank, world_size=world, local_rank=values["LOCAL_RANK"] or 0)


@contextmanager
def process_group(device_name: str, backend: str = "auto") -> Iterator[DistContext]:
    """Join the ``torchrun`` job this process belongs to (if any) for the duration of a run.

    ``backend`` is one of ``DIST_BACKENDS``; ``auto`` is NCCL when the run's device is a GPU,
    else gloo. A process group the caller already initialised is used as it is and left open.
    """
    context = DistContext.from_env()
    if not context.enabled:
        yield context
        return
    if dist.is_initialized():
        yield context
        return
    device = resolve_device(device_name, context.local_rank)
    if backend == "auto":
        backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    try:
        yield context
        dist.barrier()  # leave together: a peer's early teardown can abort gloo in the others
    finally:
        dist.destroy_process_group()


def shard_indices(order: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Process ``rank``'s share of one epoch's permutation, as ``DistributedSampler`` splits it:
    ``order`` padded to a multiple of ``world_size`` by repeating it from its start, then every
    ``world_size``-th index from ``rank``. ``order`` itself when there is one process."""
    if world_size == 1:
        return order
    n = len(order)
    total = math.ceil(n / world_size) * world_size
    padded = order.repeat(math.ceil(total / n))[:total] if total > n else order
    return padded[rank:total:world_size]


def epoch_seeds(seed: int, epoch: int, rank: int) -> tuple[int, int]:
    """Seeds of the augmentation and dropout generators of process ``rank`` in ``epoch``: distinct
    per process and epoch, and a function of them only, so a resumed run draws the same ones."""
    entropy = [seed % 2**64, epoch, rank]
    first, second = np.random.SeedSequence(entropy).generate_state(2)
    return int(first), int(second)


def reduce_sums(values: Sequence[float], context: DistContext, device: torch.device) -> list[float]:
    """``values`` summed over the processes (themselves when there is one)."""
    if not context.enabled:
        return [float(v) for v in values]
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return [float(v) for v in tensor.tolist()]


def barrier(context: DistContext) -> None:
    """Wait until every process gets here."""
    if context.enabled:
        dist.barrier()


def on_main(context: DistContext, fn: Callable[[], T]) -> T | None:
    """Run ``fn`` on rank 0 only; every process raises the ``InceptionFerError`` it raised, so
    a refusal (e.g. an existing run directory) stops the whole job at once."""
    outcome: list[Any] = [None]
    result: T | None = None
    failure: InceptionFerError | None = None
    if context.is_main:
        try:
            result = fn()
        except InceptionFerError as error:
            failure, outcome[0] = error, str(error)
    if context.enabled:
        dist.broadcast_object_list(outcome, src=0)
    if failure is not None:
        raise failure
    if outcome[0] is not None:
        raise InceptionFerError(outcome[0])
    return result
