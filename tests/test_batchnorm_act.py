"""BatchNorm + activation in contiguous memory for bf16 channels-last CPU training (``ConvBNAct``)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from inception_fer.models.blocks import ConvBNAct

CHANNELS_LAST = torch.channels_last


def _forward_backward(
    layer: nn.Module, x: torch.Tensor, grad: torch.Tensor, *, autocast: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        y = layer(x)
    y.backward(grad.to(y.dtype))
    assert x.grad is not None
    return y, x.grad


def _reference(layer: ConvBNAct, x: torch.Tensor) -> torch.Tensor:
    """The layer's modules one after the other, as ``nn.Sequential`` runs them."""
    return nn.Sequential.forward(layer, x)


def _pair(
    act_layer: type[nn.Module] = nn.ReLU,
) -> tuple[ConvBNAct, ConvBNAct, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    layer = ConvBNAct(8, 16, 3, act_layer=act_layer).to(memory_format=CHANNELS_LAST).train()
    nn.init.normal_(layer[1].weight, 1.0, 0.3)
    nn.init.normal_(layer[1].bias, 0.0, 0.3)
    x = torch.randn(16, 8, 10, 10).to(memory_format=CHANNELS_LAST)
    grad = torch.randn(16, 16, 10, 10).to(memory_format=CHANNELS_LAST)
    return layer, copy.deepcopy(layer), x, grad


@pytest.mark.parametrize("act_layer", [nn.ReLU, nn.SiLU, nn.Hardswish])
def test_matches_the_modules_in_sequence_and_keeps_channels_last(act_layer: type[nn.Module]):
    ours, ref, x, grad = _pair(act_layer)
    y, x_grad = _forward_backward(ours, x, grad)
    ref.forward = lambda t: _reference(ref, t)  # type: ignore[method-assign]
    y_ref, x_grad_ref = _forward_backward(ref, x, grad)

    assert type(y.grad_fn).__name__ == "_ContiguousBatchNormActBackward"
    assert type(y_ref.grad_fn).__name__ != "_ContiguousBatchNormActBackward"
    assert y.dtype == torch.bfloat16 and y.is_contiguous(memory_format=CHANNELS_LAST)
    assert x_grad.is_contiguous(memory_format=CHANNELS_LAST)
    torch.testing.assert_close(y.float(), y_ref.float(), rtol=0.02, atol=0.02)
    torch.testing.assert_close(x_grad, x_grad_ref, rtol=0.02, atol=0.02)
    for (name, param), param_ref in zip(ours.named_parameters(), ref.parameters(), strict=True):
        assert param.grad is not None and param_ref.grad is not None, name
        scale = param_ref.grad.abs().max().item()
        torch.testing.assert_close(param.grad, param_ref.grad, rtol=0.02, atol=0.01 * scale)
    for buffer, buffer_ref in zip(ours[1].buffers(), ref[1].buffers(), strict=True):
        torch.testing.assert_close(buffer, buffer_ref)
    assert int(ours[1].num_batches_tracked) == 1


@pytest.mark.parametrize(
    "case",
    ["float32", "contiguous input", "eval mode", "leaky relu", "cumulative momentum"],
)
def test_other_cases_run_the_modules_in_sequence(case: str):
    ours, _, x, grad = _pair()
    autocast = case != "float32"
    if case == "contiguous input":
        ours, x = ours.to(memory_format=torch.contiguous_format), x.contiguous()
    elif case == "eval mode":
        ours.eval()
    elif case == "leaky relu":
        ours[2] = nn.LeakyReLU(inplace=True)
    elif case == "cumulative momentum":
        ours[1].momentum = None
    y, _ = _forward_backward(ours, x, grad, autocast=autocast)
    assert type(y.grad_fn).__name__ != "_ContiguousBatchNormActBackward"
    assert int(ours[1].num_batches_tracked) == (0 if case == "eval mode" else 1)


def test_a_whole_network_trains_through_it():
    from inception_fer import create_model

    torch.manual_seed(0)
    model = create_model("inception_fer_s").to(memory_format=CHANNELS_LAST).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    images = torch.randn(32, 1, 24, 24).to(memory_format=CHANNELS_LAST)
    labels = torch.randint(0, 7, (32,))
    losses = []
    for _ in range(15):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = nn.functional.cross_entropy(model(images).float(), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_a_layer_called_twice_before_the_backward():
    """A shared layer: each call keeps its own batch statistics for the one backward pass."""
    ours, _, x, grad = _pair()
    x = x.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        first, second = ours(x), ours(x * 2)
    (first.float() * grad + second.float() * grad).sum().backward()
    assert type(first.grad_fn).__name__ == "_ContiguousBatchNormActBackward"
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert int(ours[1].num_batches_tracked) == 2
