"""Smoke tests of ``benchmarks/train_throughput.py`` and ``benchmarks/time_to_accuracy.py`` with
tiny settings."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from conftest import REPO_ROOT


def _load(name: str) -> ModuleType:
    if str(REPO_ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(REPO_ROOT / "benchmarks"))  # as when run as a script
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bench = _load("train_throughput")


@pytest.fixture
def _keep_torch_threads():
    """The benchmark sets torch's thread count, as ``fit`` does; put it back afterwards."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("_keep_torch_threads")
def test_measures_our_loop_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "throughput.json"
    argv = ["--models", "mini_xception", "--batch-sizes", "4", "--images", "10", "--threads", "1"]
    argv += ["--warmup-steps", "1", "--no-keras", "--json", str(out)]
    assert bench.main(argv) == 0
    results = json.loads(out.read_text())
    (row,) = results["results"]
    assert row["model"] == "mini_xception" and row["batch_size"] == 4
    assert row["ours"]["images_per_s"] > 0 and row["ours"]["params"] > 0
    assert row["keras"] is None and row["ratio"] is None and row["met"] is None
    assert results["environment"]["threads"] == 1 and results["environment"]["torch"]
    table = capsys.readouterr().out
    assert "ours img/s" in table and "mini_xception" in table


def test_compare_checks_the_target():
    fast = bench.compare("inception_tutorial", 64, {"images_per_s": 300.0}, {"images_per_s": 100.0})
    assert fast["ratio"] == pytest.approx(3.0) and fast["target"] == 2.5 and fast["met"] is True
    slow = bench.compare("googlenet", 128, {"images_per_s": 12.0}, {"images_per_s": 10.0})
    assert slow["ratio"] == pytest.approx(1.2) and slow["met"] is False
    table = bench.format_table([fast, slow])
    assert "3.00x" in table and "yes" in table and "NO" in table


@pytest.mark.parametrize(
    "argv",
    [
        ["--models", "no_such_net"],
        ["--batch-sizes", "64", "--images", "32"],
        ["--keras-python", "/no/such/python"],
        ["--warmup-steps", "0"],
    ],
)
def test_bad_options_exit_2(argv: list[str]):
    with pytest.raises(SystemExit) as error:
        bench.parse_args(argv)
    assert error.value.code == 2


def test_keras_is_skipped_with_a_note_without_tensorflow(capsys: pytest.CaptureFixture[str]):
    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("TensorFlow is installed in this interpreter")
    _, python = bench.parse_args([])
    assert python is None
    assert "--keras-python" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.usefixtures("_keep_torch_threads")
def test_keras_googlenet_matches_ours(tmp_path: Path):
    """Needs an interpreter with TensorFlow: this one, or the one KERAS_PYTHON names."""
    python = os.environ.get("KERAS_PYTHON")
    if python is None and importlib.util.find_spec("tensorflow") is None:
        pytest.skip("no TensorFlow here; set KERAS_PYTHON to a python that has it")
    out = tmp_path / "throughput.json"
    argv = ["--models", "googlenet", "--batch-sizes", "4", "--images", "4"]
    argv += ["--warmup-steps", "1", "--json", str(out)]
    assert bench.main(argv + (["--keras-python", python] if python else [])) == 0
    (row,) = json.loads(out.read_text())["results"]
    assert row["keras"]["trainable_params"] == row["ours"]["params"]
    assert row["ratio"] > 0


@pytest.mark.usefixtures("_keep_torch_threads")
def test_time_to_accuracy_trains_the_network_asked_for_and_reports_thresholds(
    npy_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from inception_fer.training.checkpoint import load_checkpoint

    time_to_accuracy = _load("time_to_accuracy")
    argv = ["--data", str(npy_dataset), "--model", "inception_fer_s", "--model-arg", "act=silu"]
    argv += ["--epochs", "2", "--threads", "1", "--thresholds", "0", "1.01", "--out", str(tmp_path)]
    argv += ["--no-decay-norm-bias", "--whiten-stem", "--seed", "3", "--val-tta", "flip"]
    argv += ["--optimizer", "muon", "--warmup-epochs", "0.5", "--weight-decay", "0.02"]
    time_to_accuracy.main(argv)
    printed = capsys.readouterr().out
    assert "inception_fer_s {'act': 'silu'}, 2 epochs, seed 3" in printed
    assert "| PublicTest accuracy (flip TTA) |" in printed
    saved = json.loads((tmp_path / "run.json").read_text())
    assert (saved["seed"], saved["decay_norm_bias"], saved["whiten_stem"]) == (3, False, True)
    assert (saved["val_tta"], saved["optimizer"]) == ("flip", "muon")
    assert (saved["warmup_epochs"], saved["weight_decay"]) == (0.5, 0.02)
    assert re.search(r"\| 0% \| \d+\.\d min \|", printed)  # reached after the first epoch
    assert "| 101% | not reached |" in printed
    model = load_checkpoint(tmp_path / "last.safetensors").model
    assert any(isinstance(m, torch.nn.SiLU) for m in model.modules())
    assert not any(isinstance(m, torch.nn.ReLU) for m in model.modules())


def test_time_to_accuracy_plans_epochs_by_a_time_budget(
    npy_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    from inception_fer.training import time_budget

    monkeypatch.setattr(time_budget, "PROBE_MIN_SECONDS", 0.05)
    monkeypatch.setattr(time_budget, "MAX_EPOCHS", 2)  # a minute holds more: stop at 2
    time_to_accuracy = _load("time_to_accuracy")
    argv = ["--data", str(npy_dataset), "--model", "mini_xception", "--time-budget", "1"]
    argv += ["--batch-size", "16", "--threads", "1", "--out", str(tmp_path)]
    time_to_accuracy.main(argv)
    printed = capsys.readouterr().out
    planned = json.loads((tmp_path / "run.json").read_text())["epochs"]
    assert (
        re.search(r"time budget 1 min: .*: (\d+) epochs", printed).group(1) == str(planned) == "2"
    )
    assert f"mini_xception, {planned} epochs (--time-budget 1)" in printed


@pytest.mark.usefixtures("_keep_torch_threads")
def test_batchnorm_layout_times_both_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    layout = _load("batchnorm_layout")
    out = tmp_path / "layout.json"
    argv = ["--model", "inception_fer_s", "--sizes", "16", "--batch-size", "4", "--rounds", "2"]
    argv += ["--steps", "1", "--threads", "1", "--json", str(out)]
    assert layout.main(argv) == 0
    (row,) = json.loads(out.read_text())["results"]
    assert row["size"] == 16 and row["speedup"] > 0
    for path in ("reference", "contiguous"):
        assert 0 < row[path]["min_ms"] <= row[path]["median_ms"]
    table = capsys.readouterr().out
    assert "16x16" in table and "speedup" in table


def test_data_parallel_cpu_times_both_layouts(tmp_path: Path):
    out = tmp_path / "ddp.json"
    argv = ["--model", "inception_fer_s", "--sizes", "16", "--batch-size", "4", "--rounds", "1"]
    argv += ["--steps", "2", "--amp", "none", "--json", str(out)]
    script = REPO_ROOT / "benchmarks" / "data_parallel_cpu.py"
    done = subprocess.run(
        [sys.executable, str(script), *argv], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    (row,) = report["results"]
    assert report["processes"] == 2 and row["size"] == 16 and row["speedup"] > 0
    for layout in ("reference", "data-parallel"):
        figures = row[layout]
        assert 0 < figures["images_per_s"] <= figures["best_images_per_s"]
    assert "16x16" in done.stdout and "2 processes x 1 thread (gloo DDP)" in done.stdout


def test_data_parallel_cpu_refuses_a_batch_that_does_not_split():
    script = REPO_ROOT / "benchmarks" / "data_parallel_cpu.py"
    argv = [sys.executable, str(script), "--batch-size", "5", "--processes", "2"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "does not split over 2 processes" in done.stderr
