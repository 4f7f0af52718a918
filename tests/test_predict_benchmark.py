"""Smoke test of ``benchmarks/predict.py`` with tiny settings on the shared photos."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from conftest import PHOTOS_DIR, REPO_ROOT


def test_prints_stage_times_and_video_rate(tmp_path: Path, capsys) -> None:
    if not (PHOTOS_DIR / "multiface.jpg").is_file():
        pytest.skip(f"shared photos not found at {PHOTOS_DIR}")
    spec = importlib.util.spec_from_file_location("predict_bench", REPO_ROOT / "benchmarks" /
                                                  "predict.py")  # fmt: skip
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["predict_bench"] = bench
    spec.loader.exec_module(bench)
    threads = torch.get_num_threads()
    try:
        out = tmp_path / "predict.json"
        argv = ["--repeats", "1", "--video-frames", "6", "--json", str(out)]
        assert bench.main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    figures = json.loads(out.read_text())
    assert figures["1 face"]["faces"] == 1 and figures["6 faces"]["faces"] == 6
    for label in ("1 face", "6 faces"):
        stages = figures[label]
        parts = stages["decode"] + stages["detect"] + stages["classify"]
        assert 0 < parts <= stages["total"] * 1.01
    assert figures["video_fps"] > 0
    assert "frames/s" in capsys.readouterr().out
