"""The classic Keras FER2013 tutorial network: one naive-style Inception module and a big MLP.

Input 48x48x1; three towers (1x1 -> 3x3, 1x1 -> 5x5, 3x3 max pool -> 1x1, 10 filters each, ReLU,
"same" padding) concatenated to 30 channels, flattened, then dense 1200, 600, 150 (ReLU) and the
classifier. 83,760,487 parameters at 48x48x1 with 7 classes, almost all in the first dense layer,
whose input size (48 * 48 * 30) fixes the image size.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .blocks import BranchConcat, ConvBNAct
from .layers import check_input, init_keras_defaults
from .registry import register_model


class TutorialInception(BranchConcat):
    """The tutorial's Inception block: 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max pool -> 1x1 (conv bias,
    ReLU, no BatchNorm), ``width`` filters per convolution."""

    def __init__(self, in_chs: int, width: int = 10) -> None:
        super().__init__(
            [
                nn.Sequential(
                    ConvBNAct(in_chs, width, 1, use_bn=False),
                    ConvBNAct(width, width, 3, use_bn=False),
                ),
                nn.Sequential(
                    ConvBNAct(in_chs, width, 1, use_bn=False),
                    ConvBNAct(width, width, 5, use_bn=False),
                ),
                nn.Sequential(
                    nn.MaxPool2d(3, stride=1, padding=1), ConvBNAct(in_chs, width, 1, use_bn=False)
                ),
            ]
        )
        self.out_chs = 3 * width


class InceptionTutorial(nn.Module):
    """The Keras tutorial network (see the module docstring); Keras default init (glorot_uniform,
    zero bias). Flattens in Keras's (H, W, C) order so Keras Dense kernels load unchanged up to a
    transpose. ``drop_rate`` > 0 adds dropout before each dense layer (the tutorial has none)."""

    default_input_size: int = 48
    min_input_size: int = 48

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        drop_rate: float = 0.0,
        input_size: int = 48,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.default_input_size = input_size
        self.min_input_size = input_size
        self.block = TutorialInception(in_chans)
        layers: list[nn.Module] = [nn.Flatten()]
        width = self.block.out_chs * input_size * input_size
        for out in (1200, 600, 150):
            layers += [nn.Dropout(drop_rate), nn.Linear(width, out), nn.ReLU(inplace=True)]
            width = out
        self.mlp = nn.Sequential(*layers, nn.Dropout(drop_rate))
        self.num_features = width
        self.fc = nn.Linear(width, num_classes)
        init_keras_defaults(self)

    def head_names(self) -> tuple[str, ...]:
        """The submodules that output class scores."""
        return ("fc",)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.mlp(x.permute(0, 2, 3, 1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(
            x,
            model="inception_tutorial",
            in_chans=self.in_chans,
            min_size=self.min_input_size,
            exact_size=self.default_input_size,
        )
        return self.forward_head(self.forward_features(x))


@register_model
def inception_tutorial(num_classes: int = 7, in_chans: int = 1, **kwargs: Any) -> InceptionTutorial:
    """The Keras FER2013 tutorial network (83.8 M parameters, fixed 48x48 input)."""
    return InceptionTutorial(num_classes=num_classes, in_chans=in_chans, **kwargs)
