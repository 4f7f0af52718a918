"""What the benchmark scripts share: the CPU's name and plain-text tables."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


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
