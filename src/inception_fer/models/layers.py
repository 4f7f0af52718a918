"""Helpers shared by the networks: the input-shape check and the weight initialisations."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InceptionFerError


def _is_exporting() -> bool:
    """Whether the model runs under tracing, ONNX export or compilation (skip Python checks)."""
    return (
        torch.jit.is_tracing()
        or torch.jit.is_scripting()
        or torch.onnx.is_in_onnx_export()
        or torch.compiler.is_compiling()
    )


def check_input(
    x: torch.Tensor,
    *,
    model: str,
    in_chans: int,
    min_size: int,
    exact_size: int | None = None,
) -> None:
    """Raise a one-line InceptionFerError when ``x`` is not an image batch the model can take.

    Uses only static shape information, and is skipped while tracing or exporting, so the model
    still exports to TorchScript / ONNX.
    """
    if _is_exporting():
        return
    if x.dim() != 4:
        raise InceptionFerError(
            f"{model} expects a batch of images (N, C, H, W), got a tensor of shape "
            f"{tuple(x.shape)}"
        )
    chans, height, width = x.shape[1], x.shape[2], x.shape[3]
    if chans != in_chans:
        raise InceptionFerError(
            f"{model} was built for {in_chans} input channel(s), got {chans} "
            f"(input shape {tuple(x.shape)})"
        )
    if exact_size is not None and (height != exact_size or width != exact_size):
        raise InceptionFerError(
            f"{model} was built for {exact_size}x{exact_size} inputs, got {height}x{width}"
        )
    if height < min_size or width < min_size:
        raise InceptionFerError(
            f"{model} needs inputs of at least {min_size}x{min_size} pixels, got {height}x{width}"
        )


def init_keras_defaults(model: nn.Module) -> None:
    """Keras defaults: glorot_uniform kernels, zero biases, BatchNorm gamma 1 and beta 0."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def init_trunc_normal(model: nn.Module, std: float) -> None:
    """torchvision's Inception init: truncated normal conv / linear weights, BatchNorm weight 1
    and bias 0; biases left as PyTorch draws them."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.trunc_normal_(module.weight, mean=0.0, std=std, a=-2.0, b=2.0)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
