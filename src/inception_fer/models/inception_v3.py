"""Inception-v3, Szegedy et al. 2015, "Rethinking the Inception Architecture for Computer Vision".

A reimplementation of torchvision's ``Inception3`` (same layers, widths, init and parameter
count: 23,834,568 at 1000 classes, 27,161,264 with the auxiliary head), without torchvision's
ImageNet ``transform_input``. Default input 299x299; inputs down to 75x75 work (the unpadded
stem and grid reductions shrink 75 to 1x1 at Mixed_7c). The auxiliary head on Mixed_6e needs the
full 299x299 in training mode (5x5 stride-3 pool, then an unpadded 5x5 conv). FER users resize
48x48 faces to 75 or more.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from .blocks import ConvBNAct, InceptionA, InceptionB, InceptionC, InceptionD, InceptionE
from .layers import check_input, init_trunc_normal
from .registry import register_model


class InceptionV3Outputs(NamedTuple):
    """What InceptionV3 returns in training mode with the auxiliary classifier."""

    logits: torch.Tensor
    aux: torch.Tensor


class InceptionV3Aux(nn.Module):
    """Auxiliary classifier on the 17x17 grid: 5x5/3 average pool, 1x1 conv 128, 5x5 conv 768,
    global average pool, FC. Init std 0.01 for the 5x5 conv and 0.001 for the FC, as intended by
    torchvision (which sets the former on a wrapper module, so its conv keeps 0.1)."""

    def __init__(self, in_chs: int, num_classes: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=3)
        self.conv0 = ConvBNAct(in_chs, 128, 1)
        self.conv1 = ConvBNAct(128, 768, 5, padding=0)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(768, num_classes)

    def init_weights(self) -> None:
        """Re-draw the 5x5 conv (std 0.01) and FC (std 0.001) weights after the network init."""
        conv = self.conv1[0]
        assert isinstance(conv, nn.Conv2d)
        nn.init.trunc_normal_(conv.weight, std=0.01, a=-2.0, b=2.0)
        nn.init.trunc_normal_(self.fc.weight, std=0.001, a=-2.0, b=2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.conv0(self.pool(x)))
        return self.fc(torch.flatten(self.gap(x), 1))


class InceptionV3(nn.Module):
    """Inception-v3 as torchvision's ``Inception3`` (see the module docstring).

    Returns logits; in training mode with ``aux_logits`` an ``InceptionV3Outputs(logits, aux)``.
    ``min_input_size`` is 75, or 299 while training with the auxiliary head.
    """

    default_input_size: int = 299

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        drop_rate: float = 0.5,
        aux_logits: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.stem = nn.Sequential(
            ConvBNAct(in_chans, 32, 3, stride=2, padding=0),
            ConvBNAct(32, 32, 3, padding=0),
            ConvBNAct(32, 64, 3),
            nn.MaxPool2d(3, stride=2),
            ConvBNAct(64, 80, 1),
            ConvBNAct(80, 192, 3, padding=0),
            nn.MaxPool2d(3, stride=2),
        )
        self.mixed_5 = nn.Sequential(InceptionA(192, 32), InceptionA(256, 64), InceptionA(288, 64))
        self.mixed_6 = nn.Sequential(
            InceptionB(288),
            InceptionC(768, 128),
            InceptionC(768, 160),
            InceptionC(768, 160),
            InceptionC(768, 192),
        )
        self.aux = InceptionV3Aux(768, num_classes) if aux_logits else None
        self.mixed_7 = nn.Sequential(InceptionD(768), InceptionE(1280), InceptionE(2048))
        self.num_features = 2048
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(drop_rate)
        self.fc = nn.Linear(self.num_features, num_classes)
        init_trunc_normal(self, std=0.1)
        if self.aux is not None:
            self.aux.init_weights()

    def head_names(self) -> tuple[str, ...]:
        """The submodules that output class scores: the classifier and the auxiliary one."""
        return ("fc",) if self.aux is None else ("fc", "aux.fc")

    @property
    def min_input_size(self) -> int:
        return 299 if self.training and self.aux is not None else 75

    def _to_mixed_6(self, x: torch.Tensor) -> torch.Tensor:
        return self.mixed_6(self.mixed_5(self.stem(x)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.mixed_7(self._to_mixed_6(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(torch.flatten(self.avgpool(x), 1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor | InceptionV3Outputs:
        check_input(x, model="inception_v3", in_chans=self.in_chans, min_size=self.min_input_size)
        if self.training and self.aux is not None:
            x = self._to_mixed_6(x)
            aux = self.aux(x)
            return InceptionV3Outputs(self.forward_head(self.mixed_7(x)), aux)
        return self.forward_head(self.forward_features(x))


@register_model
def inception_v3(num_classes: int = 7, in_chans: int = 1, **kwargs: Any) -> InceptionV3:
    """Inception-v3 (torchvision's Inception3), 299x299 default, 75x75 minimum input."""
    return InceptionV3(num_classes=num_classes, in_chans=in_chans, **kwargs)
