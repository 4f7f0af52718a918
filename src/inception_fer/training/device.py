"""Which device a run trains on (``auto``, ``cpu``, ``cuda`` or ``cuda:N``), and what its CPU can
do fast."""

from __future__ import annotations

import platform

import torch

from ..errors import InceptionFerError

X86_MACHINES = frozenset({"x86_64", "amd64", "i686", "i386"})
"""``platform.machine()`` names of x86 CPUs (lower case)."""


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


def cpu_bf16_is_native() -> bool:
    """Whether this CPU computes in bfloat16 with instructions of its own: AVX-512 BF16 or AMX on
    x86, Arm's BF16 extension elsewhere. oneDNN also accepts bf16 on plain AVX-512, converting
    to float32 and back, so its own check says yes there; but bf16 autocast then trains slower
    than float32: ``inception_fer_f``'s step took about 1.8x as long on an AVX-512 Xeon without
    BF16, 8.7x on an AVX2 AMD EPYC (docs/experiments.md)."""
    if platform.machine().lower() in X86_MACHINES:
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def cpu_description() -> str:
    """This CPU's vector capability as PyTorch dispatches it, and whether its bf16 is native:
    e.g. ``AVX2, bf16 emulated`` (benchmarks print it beside their figures)."""
    bf16 = "native" if cpu_bf16_is_native() else "emulated"
    return f"{torch.backends.cpu.get_cpu_capability()}, bf16 {bf16}"
