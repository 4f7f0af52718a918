"""fold_batchnorm: the folded copy computes what the network computes, with no BatchNorm left
after a convolution, and the original network is left as it was."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from inception_fer.models import create_model
from inception_fer.models.fold_bn import fold_batchnorm


def _randomise_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm layer statistics and an affine transform far from the identity."""
    generator = torch.Generator().manual_seed(seed)
    for layer in model.modules():
        if isinstance(layer, nn.BatchNorm2d):
            shape = layer.num_features
            if layer.running_mean is not None and layer.running_var is not None:
                layer.running_mean.copy_(torch.randn(shape, generator=generator))
                layer.running_var.copy_(torch.rand(shape, generator=generator) * 2 + 0.2)
            layer.weight.data.copy_(torch.randn(shape, generator=generator))
            layer.bias.data.copy_(torch.randn(shape, generator=generator))


def _count(model: nn.Module, kind: type[nn.Module]) -> int:
    return sum(isinstance(layer, kind) for layer in model.modules())


@pytest.mark.parametrize(
    "name", ["inception_fer_f", "inception_fer_s", "googlenet", "inception_v3", "mini_xception"]
)
def test_folded_network_gives_the_same_logits(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name)
    _randomise_batchnorm(model)
    model.eval()
    size = 75 if name == "inception_v3" else 48
    x = torch.randn(3, 1, size, size)
    with torch.no_grad():
        expected = model(x)
        folded = fold_batchnorm(model)
        got = folded(x)
    assert _count(folded, nn.BatchNorm2d) == 0
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())
    assert not torch.equal(got, torch.zeros_like(got))


def test_the_original_network_is_untouched() -> None:
    model = create_model("inception_fer_f")
    _randomise_batchnorm(model)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    batchnorms = _count(model, nn.BatchNorm2d)
    folded = fold_batchnorm(model)
    assert model.training and not folded.training
    assert _count(model, nn.BatchNorm2d) == batchnorms > 0
    after = model.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[key], before[key]) for key in before)


def test_batchnorm_without_a_convolution_before_it_is_kept() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.BatchNorm2d(1),
        nn.Conv2d(1, 4, 3),
        nn.ReLU(),
        nn.BatchNorm2d(4),  # after a ReLU: not foldable
        nn.Conv2d(4, 4, 1),
        nn.BatchNorm2d(4, track_running_stats=False),  # batch statistics even in eval mode
    )
    _randomise_batchnorm(model)
    folded = fold_batchnorm(model)
    kinds = [type(layer) for layer in folded]
    assert kinds == [type(layer) for layer in model]
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(folded(x), model.eval()(x))


def test_conv_then_batchnorm_is_folded_into_one_convolution() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU())
    _randomise_batchnorm(model)
    folded = fold_batchnorm(model)
    assert [type(layer) for layer in folded] == [nn.Conv2d, nn.Identity, nn.ReLU]
    conv = folded[0]
    assert isinstance(conv, nn.Conv2d) and conv.bias is not None
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(folded(x), model.eval()(x), atol=1e-5)
