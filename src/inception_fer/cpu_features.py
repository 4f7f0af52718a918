"""What this CPU can do fast: native bf16 (training) and VNNI (int8 inference).

The same model name covers CPUs whose bf16 speed differs eightfold and whose int8 kernels differ,
so the training loop, the quantiser and the benchmarks ask here rather than read the name."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

CPUINFO = Path("/proc/cpuinfo")
X86_MACHINES = frozenset({"x86_64", "amd64", "i686", "i386"})
"""``platform.machine()`` names of x86 CPUs (lower case)."""
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni"})
"""/proc/cpuinfo flags of the x86 instructions that multiply u8 x s8 without saturating."""


def is_x86() -> bool:
    """Whether this is an x86 CPU."""
    return platform.machine().lower() in X86_MACHINES


def cpu_bf16_is_native() -> bool:
    """Whether this CPU computes in bfloat16 with instructions of its own: AVX-512 BF16 or AMX on
    x86, Arm's BF16 extension elsewhere. oneDNN also accepts bf16 on plain AVX-512, converting
    to float32 and back, so its own check says yes there; but bf16 autocast then trains slower
    than float32: ``inception_fer_f``'s step took about 1.8x as long on an AVX-512 Xeon without
    BF16, 8.7x on an AVX2 AMD EPYC (docs/experiments.md)."""
    if is_x86():
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def cpu_description() -> str:
    """This CPU's vector capability as PyTorch dispatches it, and whether its bf16 is native:
    e.g. ``AVX2, bf16 emulated`` (benchmarks print it beside their figures)."""
    bf16 = "native" if cpu_bf16_is_native() else "emulated"
    return f"{torch.backends.cpu.get_cpu_capability()}, bf16 {bf16}"


def cpu_has_vnni() -> bool | None:
    """Whether this x86 CPU has VNNI (AVX-512 VNNI or AVX-VNNI); None where that cannot be read
    (not Linux) or does not matter (not x86: ARM's int8 dot products do not saturate)."""
    if not is_x86():
        return None
    try:
        cpuinfo = CPUINFO.read_text()
    except OSError:
        return None
    flags = next((line for line in cpuinfo.splitlines() if line.startswith("flags")), "")
    return bool(VNNI_FLAGS & set(flags.partition(":")[2].split()))
