"""mini-Xception, Arriaga et al. 2017, "Real-time Convolutional Neural Networks for Emotion and
Gender Classification" (the emotion model of the ``fer`` package).

Two unpadded 3x3 convs (8 filters), four residual depthwise-separable modules (16, 32, 64, 128;
each halves the grid), a 3x3 conv to ``num_classes`` and global average pooling: no dense layer.
56,951 trainable parameters at 7 classes (Keras reports 58,423 with the 1,472 BatchNorm moving
statistics). Default input 64x64 as in the ``fer`` package (which resizes FER2013's 48x48 faces).
Keras defaults: glorot_uniform kernels, zero biases, BatchNorm eps 1e-3 (the momentum stays
PyTorch's). The original's L2 kernel regulariser (0.01) belongs to the optimiser's weight decay.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .blocks import ConvBNAct, XceptionBlock
from .layers import check_input, init_keras_defaults
from .registry import register_model


class MiniXception(nn.Module):
    """mini-Xception (see the module docstring). ``drop_rate`` > 0 adds dropout before the final
    conv (the original has none). ``forward_head(pre_logits=True)`` returns the globally pooled
    128-channel features."""

    default_input_size: int = 64
    min_input_size: int = 5

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        drop_rate: float = 0.0,
        widths: tuple[int, ...] = (16, 32, 64, 128),
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.stem = nn.Sequential(
            ConvBNAct(in_chans, 8, 3, padding=0), ConvBNAct(8, 8, 3, padding=0)
        )
        blocks: list[nn.Module] = []
        chs = 8
        for width in widths:
            blocks.append(XceptionBlock(chs, width))
            chs = width
        self.blocks = nn.Sequential(*blocks)
        self.num_features = chs
        self.dropout = nn.Dropout(drop_rate)
        self.classifier = nn.Conv2d(chs, num_classes, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        init_keras_defaults(self)

    def head_names(self) -> tuple[str, ...]:
        """The submodules that output class scores."""
        return ("classifier",)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if pre_logits:
            return torch.flatten(self.pool(x), 1)
        return torch.flatten(self.pool(self.classifier(self.dropout(x))), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, model="mini_xception", in_chans=self.in_chans, min_size=self.min_input_size)
        return self.forward_head(self.forward_features(x))


@register_model
def mini_xception(num_classes: int = 7, in_chans: int = 1, **kwargs: Any) -> MiniXception:
    """mini-Xception (Arriaga et al. 2017), 57 k parameters, 64x64 default input."""
    return MiniXception(num_classes=num_classes, in_chans=in_chans, **kwargs)
