"""Which device a run trains on (``auto``, ``cpu``, ``cuda`` or ``cuda:N``)."""

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
