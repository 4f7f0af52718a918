"""``--whiten-stem``: the first convolution as a whitening of the training patches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from inception_fer.cli.main import main
from inception_fer.errors import InceptionFerError
from inception_fer.models import create_model
from inception_fer.training.checkpoint import load_checkpoint
from inception_fer.training.whitening import first_conv, patch_whitening, whiten_first_conv_


def _correlated_images(n: int = 64, size: int = 24) -> torch.Tensor:
    """Smooth random images: neighbouring pixels strongly correlated, as in faces."""
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(n, 1, size, size, generator=generator)
    return F.avg_pool2d(noise, 5, stride=1, padding=2) * 3 + 0.5


def _patch_covariance(images: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    out = F.conv2d(images, filters).transpose(0, 1).reshape(len(filters), -1)
    out = out - out.mean(dim=1, keepdim=True)
    return out @ out.T / out.shape[1]


def test_filters_decorrelate_the_patches_and_come_in_opposite_pairs() -> None:
    images = _correlated_images()
    raw = F.unfold(images, 3).transpose(1, 2).reshape(-1, 9)
    assert torch.corrcoef(raw.T)[0, 1] > 0.5  # the pixels of a patch are correlated
    filters = patch_whitening(images, (3, 3), (0, 0), 16, eps=1e-6)
    assert filters.shape == (16, 1, 3, 3)
    assert torch.equal(filters[8:], -filters[:8])
    covariance = _patch_covariance(images, filters[:8])
    assert torch.allclose(covariance, torch.eye(8), atol=2e-3)


def test_the_largest_components_come_first_and_extra_filters_are_left_alone() -> None:
    images = _correlated_images()
    conv = nn.Conv2d(1, 24, 3, padding=1, bias=False)
    model = nn.Sequential(conv, nn.BatchNorm2d(24), nn.ReLU())
    before = conv.weight.detach().clone()
    line = whiten_first_conv_(model, images)
    assert line.startswith("whitened 0: 18 of 24 filters from 36,864 3x3 patches of 64")
    assert torch.equal(conv.weight[18:], before[18:])  # 9 components, twice each
    assert torch.equal(conv.weight[9:18], -conv.weight[:9])
    # Unit-variance outputs: the larger a component's variance, the smaller its filter.
    norms = conv.weight[:9].flatten(1).norm(dim=1)
    assert torch.all(norms[1:] >= norms[:-1])


def test_whitens_the_stem_of_a_registry_model_and_nothing_else() -> None:
    model = create_model("inception_fer_s")
    name, conv = first_conv(model)
    assert name == "stem.0.0"
    others = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith(name)}
    whiten_first_conv_(model, _correlated_images(8, 48))
    filters = conv.weight.detach()
    assert torch.equal(filters[8:], -filters[:8])
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in others.items())


def test_refuses_models_it_cannot_whiten() -> None:
    with pytest.raises(InceptionFerError, match="has no 2-D convolution"):
        whiten_first_conv_(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), torch.zeros(2, 1, 2, 2))
    grouped = nn.Sequential(nn.Conv2d(2, 4, 3, groups=2))
    with pytest.raises(InceptionFerError, match=r"first convolution \(0\) must be a plain one"):
        whiten_first_conv_(grouped, torch.zeros(2, 2, 8, 8))
    with pytest.raises(InceptionFerError, match="images have 1 channels, 0 takes 3"):
        whiten_first_conv_(nn.Sequential(nn.Conv2d(3, 8, 3)), torch.zeros(2, 1, 8, 8))


def test_cli_trains_with_a_whitened_stem_and_saves_the_option(
    tmp_path: Path, npy_dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    args = ["train", "--model", "inception_fer_s", "--data", str(npy_dataset), "--out", str(run)]
    args += ["--epochs", "1", "--batch-size", "16", "--threads", "1", "--quiet"]
    assert main([*args, "--whiten-stem"]) == 0
    assert "whitened stem.0.0: 16 of 16 filters" in capsys.readouterr().out
    assert json.loads((run / "run.json").read_text())["whiten_stem"] is True
    assert load_checkpoint(run / "last.safetensors").model.stem[0][0].weight.shape == (16, 1, 3, 3)
    assert main([*args, "--out", str(tmp_path / "x"), "--whiten-stem", "--init", "default"]) == 2
    assert "--whiten-stem sets the first convolution" in capsys.readouterr().err
