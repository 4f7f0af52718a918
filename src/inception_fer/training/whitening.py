"""``--whiten-stem``: start a network's first convolution as a whitening of the training images'
patches (the patch-whitening layer of Keller Jordan's airbench for CIFAR-10; Coates & Ng 2011).

Each filter projects a patch onto one principal component of the training patches, divided by
the square root of that component's variance, and every component comes twice, with opposite
signs, so that the ReLU after the layer passes both halves. The largest components come first;
filters beyond twice the patch's dimension keep their random initialisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InceptionFerError

WHITENING_IMAGES = 512
"""Training images whose patches the whitening is computed from (48x48 faces: 1.2 M patches)."""

WHITENING_EPS = 1e-2
"""Added to each component's variance before the division (keeps near-constant components of
the patches, here the finest detail, from being amplified into noise)."""


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """The name and module of ``model``'s first ``nn.Conv2d`` (in registration order)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise InceptionFerError(f"--whiten-stem: {type(model).__name__} has no 2-D convolution")


def patch_whitening(
    images: torch.Tensor,
    kernel_size: tuple[int, int],
    padding: tuple[int, int],
    num_filters: int,
    eps: float = WHITENING_EPS,
) -> torch.Tensor:
    """Whitening filters for the ``kernel_size`` patches of ``images`` (N, C, H, W): at most
    ``num_filters`` of them, shaped (F, C, kh, kw), F = min(num_filters, 2 * C * kh * kw)."""
    channels = images.shape[1]
    patches = F.unfold(images.float(), kernel_size, padding=padding)  # N, D, L
    patches = patches.transpose(1, 2).reshape(-1, patches.shape[1])
    patches = patches - patches.mean(dim=0)
    covariance = patches.T @ patches / len(patches)
    variances, components = torch.linalg.eigh(covariance.double())  # ascending variances
    pairs = min(math.ceil(num_filters / 2), len(variances))
    variances, components = variances.flip(0)[:pairs], components.flip(1)[:, :pairs]
    filters = (components / (variances.clamp_min(0) + eps).sqrt()).T.float()
    filters = torch.cat([filters, -filters])[:num_filters]
    return filters.reshape(len(filters), channels, *kernel_size)


@torch.no_grad()
def whiten_first_conv_(model: nn.Module, images: torch.Tensor) -> str:
    """Set the first convolution of ``model`` from ``images`` (already normalised as the model
    sees them) with ``patch_whitening``; returns a line for the log."""
    name, conv = first_conv(model)
    if conv.groups != 1 or conv.dilation != (1, 1) or not isinstance(conv.padding, tuple):
        raise InceptionFerError(
            f"--whiten-stem: the first convolution ({name}) must be a plain one (no groups, "
            "dilation or string padding)"
        )
    if images.shape[1] != conv.in_channels:
        raise InceptionFerError(
            f"--whiten-stem: images have {images.shape[1]} channels, {name} takes "
            f"{conv.in_channels}"
        )
    kernel = (conv.kernel_size[0], conv.kernel_size[1])
    padding = (int(conv.padding[0]), int(conv.padding[1]))
    filters = patch_whitening(images, kernel, padding, conv.out_channels)
    conv.weight[: len(filters)] = filters.to(conv.weight)
    patches = len(images) * F.unfold(images[:1].float(), kernel, padding=padding).shape[-1]
    return (
        f"whitened {name}: {len(filters)} of {conv.out_channels} filters from {patches:,} "
        f"{kernel[0]}x{kernel[1]} patches of {len(images)} training images"
    )
