"""The moving average of the weights (``--ema``): its arithmetic, and how runs use and save it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from inception_fer.errors import InceptionFerError
from inception_fer.training.checkpoint import load_checkpoint
from inception_fer.training.ema import WeightAverage
from inception_fer.training.fit import fit, resume
from test_batchnorm_recalibration import _recalibrated, _stats
from test_training import assert_same_weights, config, interrupt_after, tiny_data, weights


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))


def test_average_follows_the_warmed_up_decay() -> None:
    net = _net()
    average = WeightAverage(net, decay=0.9)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    expected = {k: v.clone().float() for k, v in start.items()}
    for step in range(3):
        with torch.no_grad():
            for parameter in net.parameters():
                parameter.add_(1.0 + step)
            net[1].running_mean += 0.5
            net[1].num_batches_tracked += 1
        decay = min(0.9, (1 + step) / (10 + step))  # 0.1, 2/11, 3/12: below 0.9 throughout
        assert average.current_decay() == pytest.approx(decay)
        average.update(net)
        for key, value in net.state_dict().items():
            if value.is_floating_point():
                expected[key] = decay * expected[key] + (1 - decay) * value
    for key, value in average.module.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(value, expected[key], atol=1e-6), key
    tracked = average.module.state_dict()["1.num_batches_tracked"]
    assert int(tracked) == int(net.state_dict()["1.num_batches_tracked"]) == 3
    # The average is a separate, frozen copy in eval mode; the trained network is untouched.
    assert not average.module.training
    assert not any(p.requires_grad for p in average.module.parameters())
    assert not torch.equal(net[0].weight, average.module[0].weight)
    assert average.updates == 3


def test_decay_reaches_its_setting_after_warm_up() -> None:
    average = WeightAverage(_net(), decay=0.99)
    average.updates = 10_000
    assert average.current_decay() == 0.99
    with pytest.raises(ValueError, match="EMA decay"):
        WeightAverage(_net(), decay=1.0)


@pytest.mark.parametrize("ema", [-0.1, 1.0])
def test_config_refuses_a_decay_outside_0_1(ema: float) -> None:
    with pytest.raises(InceptionFerError, match="EMA decay"):
        config(ema=ema)


def test_a_negligible_decay_saves_the_trained_weights(tmp_path: Path) -> None:
    """With decay ~0 the average is the trained model at every step, so the run saves exactly
    what a run without --ema saves; a real decay saves other weights with other metrics."""
    data = tiny_data()
    runs = {"plain": 0.0, "tiny": 1e-12, "ema": 0.9}
    for name, ema in runs.items():
        fit(config(ema=ema), tmp_path / name, data=data, quiet=True, log=lambda _: None)
    assert_same_weights(
        tmp_path / "plain" / "last.safetensors", tmp_path / "tiny" / "last.safetensors"
    )
    plain, averaged = (
        weights(tmp_path / "plain" / "last.safetensors"),
        weights(tmp_path / "ema" / "last.safetensors"),
    )
    assert any(not torch.equal(plain[k], averaged[k]) for k in plain if "running" not in k)
    state = load_checkpoint(tmp_path / "ema" / "last.safetensors", with_train_state=True)
    assert state.train_state is not None
    trained = state.train_state["ema"]["trained"]
    # The trained weights of the EMA run are those of the plain run: the average only watches.
    for key, value in plain.items():
        assert torch.equal(trained[key], value), key
    assert state.train_state["ema"]["updates"] == 3 * 5  # 3 epochs of 70 faces in batches of 16


def test_resumed_ema_run_matches_uninterrupted_run(tmp_path: Path) -> None:
    data = tiny_data()
    cfg = config(ema=0.95, schedule="cosine", augment="default")
    fit(cfg, tmp_path / "full", data=data, quiet=True, log=lambda _: None)

    with pytest.raises(KeyboardInterrupt):
        fit(cfg, tmp_path / "cut", data=data, quiet=True, log=interrupt_after(1))
    result = resume(tmp_path / "cut", data=data, quiet=True, log=lambda _: None)
    assert [int(r["epoch"]) for r in result.rows] == [1, 2, 3]
    full = load_checkpoint(tmp_path / "full" / "last.safetensors", with_train_state=True)
    cut = load_checkpoint(tmp_path / "cut" / "last.safetensors", with_train_state=True)
    assert full.train_state is not None and cut.train_state is not None
    assert_same_weights(
        tmp_path / "full" / "last.safetensors", tmp_path / "cut" / "last.safetensors"
    )
    for key, value in full.train_state["ema"]["trained"].items():
        assert torch.equal(cut.train_state["ema"]["trained"][key], value), key


def test_crop_run_recalibrates_the_average(tmp_path: Path) -> None:
    data = tiny_data()
    fit(config(epochs=1, augment="flip,crop=40", ema=0.9), tmp_path / "crop", data=data,
        quiet=True, log=lambda _: None)  # fmt: skip
    best = tmp_path / "crop" / "best.safetensors"
    whole_face = _recalibrated(best, data)
    saved = _stats(best)
    state = load_checkpoint(tmp_path / "crop" / "last.safetensors", with_train_state=True)
    assert state.train_state is not None
    trained = {k: v for k, v in state.train_state["ema"]["trained"].items() if k in saved}

    def close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
        # channels-last in training, contiguous here: the sums round differently (~1e-3)
        return all(torch.allclose(a[k], b[k], rtol=1e-2, atol=1e-3) for k in a)

    assert close(saved, whole_face)  # the average's statistics, re-estimated on whole faces
    assert not close(trained, whole_face)  # the trained model keeps its crop statistics


def test_cli_ema_option(tmp_path: Path, npy_dataset: Path, capsys) -> None:
    from inception_fer.cli.main import main

    out = tmp_path / "run"
    code = main(["train", "--model", "mini_xception", "--data", str(npy_dataset), "--epochs", "1",
                 "--batch-size", "16", "--threads", "1", "--ema", "0.5", "--quiet", "--out",
                 str(out)])  # fmt: skip
    assert code == 0
    assert '"ema": 0.5' in (out / "run.json").read_text()
    assert main(["train", "--data", str(npy_dataset), "--ema", "2", "--out", str(tmp_path / "x")])
    assert "EMA decay must be in [0, 1)" in capsys.readouterr().err
