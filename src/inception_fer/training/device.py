"""Which device a run trains on (``auto``, ``cpu``, ``cuda`` or ``cuda:N``), and the batch size
its forward-only passes run fastest at."""

from __future__ import annotations

import torch

from ..errors import InceptionFerError


def resolve_device(name: str, local_rank: int | None = None) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU. Under ``torchrun`` (``local_rank`` given),
    ``auto`` and ``cuda`` mean this process's GPU, ``cuda:LOCAL_RANK``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise InceptionFerError(f"unknown device {name!r}: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InceptionFerError("device 'cuda' was asked for but CUDA is not available here")
    if local_rank is not None and device.type == "cuda":
        if device.index is not None and device.index != local_rank:
            raise InceptionFerError(
                f"--device {name} under torchrun: each process takes the GPU of its LOCAL_RANK "
                f"({local_rank}); pass --device cuda or auto"
            )
        device = torch.device("cuda", local_rank)
    return device


CPU_FORWARD_BATCH = 64
"""Forward-only passes on the CPU run fastest in small batches, whose activations stay in the
caches: ``inception_fer_f`` scored PublicTest's 3,589 faces in 9.3 s at batch 64 against 13.9 s
at 512 on 2 cores, and re-estimated BatchNorm in 12.6 s at 64 against 16.5 s at 256
(docs/experiments.md, eighteenth session)."""

ACCELERATOR_FORWARD_BATCH = 512
"""A GPU needs large batches to be busy."""


def forward_batch_size(device: torch.device) -> int:
    """The batch size for validation, evaluation and BatchNorm re-estimation on ``device``."""
    return CPU_FORWARD_BATCH if device.type == "cpu" else ACCELERATOR_FORWARD_BATCH
