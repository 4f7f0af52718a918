"""What the benchmark scripts share: the CPU's name and plain-text tables."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from pathlib import Path

from inception_fer.cpu_features import cpu_description, cpu_has_vnni


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere) and what it
    can do fast, e.g. ``AMD EPYC (AVX2, bf16 emulated, no VNNI)``: the same name covers CPUs whose
    bf16 speed differs eightfold and whose int8 kernels differ (VNNI or not)."""
    name = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    vnni = {True: ", VNNI", False: ", no VNNI", None: ""}[cpu_has_vnni()]
    return f"{name} ({cpu_description()}{vnni})"


def aligned_table(lines: Sequence[Sequence[str]], text_columns: int = 1) -> str:
    """``lines`` (the header first) as aligned columns: the first ``text_columns`` left-aligned,
    the figures after them right-aligned."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if i < text_columns else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )
