"""BatchNorm statistics re-estimated on whole faces (``inception_fer.training.batchnorm``)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from inception_fer.training.batchnorm import (
    RECALIBRATION_IMAGES,
    recalibrate_batchnorm,
    recalibration_subset,
)
from inception_fer.training.checkpoint import load_checkpoint
from inception_fer.training.fit import fit
from test_training import config, tiny_data


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.BatchNorm2d(4))


def test_statistics_are_the_exact_averages_and_the_rest_is_untouched() -> None:
    net = _net().eval()
    bn = net[1]
    bn.momentum = 0.3
    images = torch.randint(0, 256, (320, 20, 20), dtype=torch.uint8)  # 5 equal batches
    weights = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k}
    recalibrate_batchnorm(net, images, 0.5, 0.25, batch_size=64,
                          memory_format=torch.contiguous_format)  # fmt: skip
    features = net[0]((images[:, None].float() / 255 - 0.5) / 0.25)
    assert torch.allclose(bn.running_mean, features.mean(dim=(0, 2, 3)), atol=1e-5)
    # Cumulative averaging of per-batch unbiased variances: close to the pooled variance.
    assert torch.allclose(bn.running_var, features.var(dim=(0, 2, 3)), rtol=2e-2)
    assert not net.training and bn.momentum == 0.3
    for key, value in weights.items():
        if "num_batches" not in key:
            assert torch.equal(net.state_dict()[key], value), key


def test_dropout_is_off_and_draws_no_random_numbers() -> None:
    # A dropout before the BatchNorm would scale and zero its inputs in training mode.
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Dropout(0.5), nn.BatchNorm2d(4)).train()
    images = torch.randint(0, 256, (64, 12, 12), dtype=torch.uint8)
    rng = torch.get_rng_state()
    recalibrate_batchnorm(net, images, 0.5, 0.25, memory_format=torch.contiguous_format)
    assert torch.equal(torch.get_rng_state(), rng)
    features = net[0]((images[:, None].float() / 255 - 0.5) / 0.25)
    assert torch.allclose(net[2].running_mean, features.mean(dim=(0, 2, 3)), atol=1e-5)
    assert net.training and net[1].training


def test_subset_is_seeded_and_bounded() -> None:
    assert torch.equal(recalibration_subset(10_000, 3), recalibration_subset(10_000, 3))
    assert not torch.equal(recalibration_subset(10_000, 3), recalibration_subset(10_000, 4))
    assert len(recalibration_subset(10_000, 0)) == RECALIBRATION_IMAGES < 10_000
    assert sorted(recalibration_subset(50, 0).tolist()) == list(range(50))


def _stats(path: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(path).model.state_dict()
    return {k: v.clone() for k, v in state.items() if k.endswith(("running_mean", "running_var"))}


def _recalibrated(path: Path, data) -> dict[str, torch.Tensor]:
    checkpoint = load_checkpoint(path)
    images = torch.from_numpy(data.train.images)[recalibration_subset(len(data.train), 5)]
    recalibrate_batchnorm(checkpoint.model, images, checkpoint.meta.mean, checkpoint.meta.std)
    state = checkpoint.model.state_dict()
    return {k: v for k, v in state.items() if k.endswith(("running_mean", "running_var"))}


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-5) for k in a)


def test_crop_runs_save_statistics_of_whole_faces(tmp_path: Path) -> None:
    data = tiny_data()
    fit(config(epochs=1, augment="flip,crop=40"), tmp_path / "crop", data=data, quiet=True,
        log=lambda _: None)  # fmt: skip
    fit(config(epochs=1, augment="flip"), tmp_path / "whole", data=data, quiet=True,
        log=lambda _: None)  # fmt: skip
    crop, whole = tmp_path / "crop" / "best.safetensors", tmp_path / "whole" / "best.safetensors"
    assert _close(_stats(crop), _recalibrated(crop, data))  # already re-estimated: unchanged
    assert not _close(_stats(whole), _recalibrated(whole, data))  # momentum statistics
