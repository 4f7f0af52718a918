"""What ``training.device`` says about this CPU: whether its bf16 is native."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest
import torch

from inception_fer.training import device
from inception_fer.training.device import X86_MACHINES, cpu_bf16_is_native, cpu_description

CPUINFO = Path("/proc/cpuinfo")
BF16_FLAGS = {"avx512_bf16", "amx_bf16", "amx_tile"}


@pytest.mark.skipif(
    platform.machine().lower() not in X86_MACHINES or not CPUINFO.exists(),
    reason="compares with the x86 CPU flags of /proc/cpuinfo",
)
def test_bf16_is_native_exactly_when_the_cpu_has_bf16_instructions() -> None:
    flags_line = next(line for line in CPUINFO.read_text().splitlines() if line.startswith("flags"))
    has_bf16 = bool(BF16_FLAGS & set(flags_line.partition(":")[2].split()))
    assert cpu_bf16_is_native() == has_bf16
    assert cpu_description().endswith("bf16 native" if has_bf16 else "bf16 emulated")


@pytest.mark.parametrize(
    ("machine", "avx512_bf16", "amx", "onednn_bf16", "native"),
    [
        ("x86_64", False, False, True, False),  # plain AVX-512: oneDNN converts, not native
        ("x86_64", False, False, False, False),  # AVX2 only
        ("x86_64", True, False, True, True),
        ("AMD64", False, True, True, True),
        ("aarch64", False, False, True, True),  # Arm's BF16 extension, as oneDNN reports it
        ("aarch64", False, False, False, False),
    ],
)
def test_bf16_is_native_on_x86_only_with_avx512_bf16_or_amx(
    monkeypatch: pytest.MonkeyPatch,
    machine: str,
    avx512_bf16: bool,
    amx: bool,
    onednn_bf16: bool,
    native: bool,
) -> None:
    monkeypatch.setattr(device.platform, "machine", lambda: machine)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: onednn_bf16)
    assert cpu_bf16_is_native() is native
