"""``inception-fer benchmark``: the table of trained models, checked against other measurements."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from inception_fer.classes import EMOTIONS
from inception_fer.cli.main import main
from inception_fer.evaluation.evaluate import evaluate_checkpoint
from inception_fer.pretrained import list_pretrained
from inception_fer.summary import count_mult_adds
from inception_fer.training.checkpoint import CheckpointMeta, save_checkpoint


@pytest.fixture
def _keep_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("_keep_torch_threads")
def test_table_of_a_checkpoint_matches_evaluate(npy_dataset: Path, tmp_path: Path,
                                                capsys) -> None:  # fmt: skip
    meta = CheckpointMeta("mini_xception", {"in_chans": 1}, list(EMOTIONS), mean=0.3, std=0.2)
    torch.manual_seed(0)
    model = meta.build_model()
    checkpoint = save_checkpoint(tmp_path / "tiny.safetensors", model, meta)
    out = tmp_path / "table.json"
    argv = ["benchmark", str(checkpoint), "--data", str(npy_dataset), "--tta", "none,flip",
            "--threads", "1", "--batch-size", "8", "--seconds", "0.05", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "| model | network | parameters |" in table and "PublicTest (flip)" in table
    (row,) = json.loads(out.read_text())["models"]
    assert row["params"] == sum(p.numel() for p in model.parameters())
    assert row["mult_adds"] == count_mult_adds(model, 48, 1)
    for mode in ("none", "flip"):
        expected = evaluate_checkpoint(checkpoint, npy_dataset, tmp_path / mode, tta=mode)
        assert row["accuracy"][mode] == pytest.approx(expected.report.accuracy, abs=1e-4)
    assert row["latency_ms_batch1"] > 0 and row["images_per_s"] > 0
    assert f"{row['params']:,}" in table


@pytest.mark.usefixtures("_keep_torch_threads")
def test_default_rows_are_the_shipped_models_and_bad_options(capsys) -> None:
    assert main(["benchmark", "--seconds", "0.02", "--batch-size", "4", "--threads", "1"]) == 0
    table = capsys.readouterr().out
    for name in list_pretrained():
        assert f"`{name}`" in table
    assert main(["benchmark", "--tta", "rotate", "--seconds", "0.01"]) == 2
    assert "unknown TTA mode" in capsys.readouterr().err
