"""What ``cpu_features`` says about this CPU: native bf16, VNNI."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inception_fer import cpu_features
from inception_fer.cpu_features import cpu_bf16_is_native, cpu_description

BF16_FLAGS = {"avx512_bf16", "amx_bf16", "amx_tile"}


@pytest.mark.skipif(
    not cpu_features.is_x86() or not cpu_features.CPUINFO.exists(),
    reason="compares with the x86 CPU flags of /proc/cpuinfo",
)
def test_bf16_is_native_exactly_when_the_cpu_has_bf16_instructions() -> None:
    cpuinfo = cpu_features.CPUINFO.read_text()
    flags_line = next(line for line in cpuinfo.splitlines() if line.startswith("flags"))
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
    monkeypatch.setattr(cpu_features.platform, "machine", lambda: machine)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: onednn_bf16)
    assert cpu_bf16_is_native() is native


@pytest.mark.parametrize(
    ("machine", "flags", "expected"),
    [
        ("x86_64", "fpu avx2 avx512f avx512_vnni", True),
        ("x86_64", "fpu avx2 avx_vnni", True),
        ("x86_64", "fpu avx2 avx512f avx512bw", False),
        ("aarch64", "fp asimd asimddp", None),
    ],
)
def test_cpu_has_vnni_reads_the_cpu_flags(
    machine: str, flags: str, expected: bool | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: a CPU\nflags\t\t: {flags}\n\n")
    monkeypatch.setattr(cpu_features, "CPUINFO", cpuinfo)
    monkeypatch.setattr(cpu_features.platform, "machine", lambda: machine)
    assert cpu_features.cpu_has_vnni() is expected
    monkeypatch.setattr(cpu_features, "CPUINFO", tmp_path / "absent")
    assert cpu_features.cpu_has_vnni() is None  # cannot be read
