"""Training-mode BatchNorm + activation for bf16 channels-last tensors on the CPU, run in
contiguous (NCHW) memory.

PyTorch's CPU BatchNorm kernels are about twice as slow on channels-last bf16 tensors as on
contiguous ones (forward and backward, measured on a 2-core Xeon with AMX for 16-128 channels),
while the convolutions want channels-last. Two layout copies each way cost less than the
difference: an ``inception_fer_f`` training step is 1.08-1.23x faster, with SiLU 1.29-1.36x
(docs/experiments.md, thirty-first session). The result equals ``act(batch_norm(x))`` up to bf16 rounding, and the
running statistics update the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeGuard

import torch
from torch import nn
from torch.nn import functional as F

Unary = Callable[[torch.Tensor], torch.Tensor]
Backward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# activation -> (forward, backward from the gradient and the BatchNorm output); ReLU runs in
# place, so its backward gets its own output, which serves as well.
ACTIVATIONS: dict[type[nn.Module], tuple[Unary, Backward]] = {
    nn.ReLU: (torch.relu_, lambda grad, out: torch.ops.aten.threshold_backward(grad, out, 0)),
    nn.SiLU: (F.silu, torch.ops.aten.silu_backward),
    nn.Hardswish: (F.hardswish, torch.ops.aten.hardswish_backward),
}


class _ContiguousBatchNormAct(torch.autograd.Function):
    """``act(batch_norm(x))`` in training mode, computed on a contiguous copy of ``x``."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor,
        running_mean: torch.Tensor,
        running_var: torch.Tensor,
        momentum: float,
        eps: float,
        act: type[nn.Module],
    ) -> torch.Tensor:
        x = x.contiguous()
        pre, save_mean, save_invstd = torch.native_batch_norm(
            x, weight, bias, running_mean, running_var, True, momentum, eps
        )
        forward, ctx.act_backward = ACTIVATIONS[act]
        out = forward(pre)
        ctx.save_for_backward(x, pre, weight, save_mean, save_invstd)
        ctx.eps = eps
        return out.contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, pre, weight, save_mean, save_invstd = ctx.saved_tensors
        grad = ctx.act_backward(grad.contiguous(), pre)
        # Training mode: the backward needs the batch statistics only, not the running ones.
        grad_x, grad_weight, grad_bias = torch.ops.aten.native_batch_norm_backward(
            grad,
            x,
            weight,
            None,
            None,
            save_mean,
            save_invstd,
            True,
            ctx.eps,
            [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2]],
        )
        if grad_x is not None:
            grad_x = grad_x.contiguous(memory_format=torch.channels_last)
        return grad_x, grad_weight, grad_bias, None, None, None, None, None


def takes_contiguous_path(
    bn: nn.Module, act: nn.Module, x: torch.Tensor
) -> TypeGuard[nn.BatchNorm2d]:
    """Whether ``act(bn(x))`` may run as :func:`batch_norm_act`: a training-mode ``BatchNorm2d``
    with running statistics and a fixed momentum, a ReLU, SiLU or hard-swish, and a bf16
    channels-last CPU tensor (only there was it measured faster; float32 is not)."""
    return (
        type(bn) is nn.BatchNorm2d
        and bn.training
        and bn.affine
        and bn.track_running_stats
        and bn.momentum is not None
        and type(act) in ACTIVATIONS
        and x.device.type == "cpu"
        and x.dtype == torch.bfloat16
        and x.is_contiguous(memory_format=torch.channels_last)
        and not x.is_contiguous()
        and not torch.compiler.is_compiling()
    )


def batch_norm_act(bn: nn.BatchNorm2d, act: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``act(bn(x))`` for a training-mode ``bn`` (see :func:`takes_contiguous_path`); the
    output is channels-last like ``x``."""
    assert bn.running_mean is not None and bn.running_var is not None
    assert bn.num_batches_tracked is not None and bn.momentum is not None
    bn.num_batches_tracked.add_(1)
    out: torch.Tensor = _ContiguousBatchNormAct.apply(
        x, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.momentum, bn.eps, type(act)
    )
    return out
