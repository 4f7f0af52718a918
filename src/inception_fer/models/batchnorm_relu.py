"""Training-mode BatchNorm + ReLU for bf16 channels-last tensors on the CPU, run in contiguous
(NCHW) memory.

PyTorch's CPU BatchNorm kernels are about twice as slow on channels-last bf16 tensors as on
contiguous ones (forward and backward, measured on a 2-core Xeon with AMX for 16-128 channels),
while the convolutions want channels-last. Two layout copies each way cost less than the
difference: an ``inception_fer_f`` training step is 11-18 % faster (docs/experiments.md,
thirty-first session). The result equals ``relu(batch_norm(x))`` up to bf16 rounding, and the
running statistics update the same way.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class _ContiguousBatchNormReLU(torch.autograd.Function):
    """``relu(batch_norm(x))`` in training mode, computed on a contiguous copy of ``x``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor,
        running_mean: torch.Tensor,
        running_var: torch.Tensor,
        momentum: float,
        eps: float,
    ) -> torch.Tensor:
        x = x.contiguous()
        y, save_mean, save_invstd = torch.native_batch_norm(
            x, weight, bias, running_mean, running_var, True, momentum, eps
        )
        y = torch.relu_(y)
        ctx.save_for_backward(x, y, weight, running_mean, running_var, save_mean, save_invstd)
        ctx.eps = eps
        return y.contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x, y, weight, running_mean, running_var, save_mean, save_invstd = ctx.saved_tensors
        grad = torch.ops.aten.threshold_backward(grad.contiguous(), y, 0)
        grad_x, grad_weight, grad_bias = torch.ops.aten.native_batch_norm_backward(
            grad,
            x,
            weight,
            running_mean,
            running_var,
            save_mean,
            save_invstd,
            True,
            ctx.eps,
            [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2]],
        )
        if grad_x is not None:
            grad_x = grad_x.contiguous(memory_format=torch.channels_last)
        return grad_x, grad_weight, grad_bias, None, None, None, None


def takes_contiguous_path(bn: nn.Module, act: nn.Module, x: torch.Tensor) -> bool:
    """Whether ``act(bn(x))`` may run as :func:`batch_norm_relu`: a training-mode
    ``BatchNorm2d`` with running statistics and a fixed momentum, a ReLU, and a bf16
    channels-last CPU tensor (only there was it measured faster; float32 is not)."""
    return (
        type(bn) is nn.BatchNorm2d
        and bn.training
        and bn.affine
        and bn.track_running_stats
        and bn.momentum is not None
        and type(act) is nn.ReLU
        and x.device.type == "cpu"
        and x.dtype == torch.bfloat16
        and x.is_contiguous(memory_format=torch.channels_last)
        and not x.is_contiguous()
        and not torch.compiler.is_compiling()
    )


def batch_norm_relu(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``relu(bn(x))`` for a training-mode ``bn`` (see :func:`takes_contiguous_path`); the
    output is channels-last like ``x``."""
    assert bn.running_mean is not None and bn.running_var is not None
    assert bn.num_batches_tracked is not None and bn.momentum is not None
    bn.num_batches_tracked.add_(1)
    out: torch.Tensor = _ContiguousBatchNormReLU.apply(
        x, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.momentum, bn.eps
    )
    return out
