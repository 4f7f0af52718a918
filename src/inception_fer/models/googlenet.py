"""GoogLeNet (Inception-v1), Szegedy et al. 2014, "Going deeper with convolutions".

Nine Inception modules with the channel widths of the paper's Table 1, two auxiliary classifiers
(on 4a and 4d, training mode only, loss weight ``AUX_LOSS_WEIGHT``), dropout 0.4 before the
classifier and 0.7 in the auxiliary heads.

Differences from the paper and from torchvision's ``googlenet``:

* BatchNorm after every convolution (no conv bias) and no LocalResponseNorm, like torchvision;
  the paper predates BatchNorm.
* The third branch uses a real 5x5 convolution, as in the paper; torchvision uses a 3x3 there
  (a known slip kept for its pretrained weights). ``conv5x5_kernel=3`` reproduces torchvision.
* ``stem="fer"`` (the default) replaces the ImageNet stem (7x7 stride 2, max pool, 1x1, 3x3,
  max pool: 224 -> 28) by a stride-1 one (3x3 64, 1x1 64, 3x3 192, max pool: 48 -> 24), so a
  48x48 face reaches the modules at 24x24, then 12x12 (4a-4e) and 6x6 (5a-5b) as in the paper's
  later stages. ``stem="imagenet"`` is the paper's.
* The auxiliary heads average-pool to 4x4 adaptively (torchvision's choice) instead of 5x5
  stride 3, so they work at any feature size.

Parameters at 224x224x3, 1000 classes, ``stem="imagenet"``: 7,005,832 without the auxiliary
heads and 13,385,816 with them. torchvision's ``googlenet`` has 6,624,904 (13,004,888 with aux):
the difference, 380,928, is exactly the 5x5 branches, whose 16 extra weights per (in, out)
channel pair add 16 x 23,808 over the nine modules. BatchNorm is not a difference from
torchvision; against the paper's conv-bias network it adds one parameter per conv output channel
(7,280), which would have 6,998,552 without the auxiliary heads.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import torch
from torch import nn

from ..errors import InceptionFerError
from .blocks import ConvBNAct, InceptionModule
from .layers import check_input, init_trunc_normal
from .registry import register_model

AUX_LOSS_WEIGHT = 0.3
"""Weight of each auxiliary classifier's loss in the training loss (paper, section 5)."""

# Table 1: in_chs, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
_TABLE_1: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "3a": (192, 64, 96, 128, 16, 32, 32),
    "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64),
    "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64),
    "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}

Stem = Literal["fer", "imagenet"]
_STEM_INPUT_SIZES: dict[str, tuple[int, int]] = {"fer": (48, 8), "imagenet": (224, 31)}
"""Default and minimum input size of each stem."""


class GoogLeNetOutputs(NamedTuple):
    """What GoogLeNet returns in training mode with auxiliary classifiers."""

    logits: torch.Tensor
    aux2: torch.Tensor
    aux1: torch.Tensor


class GoogLeNetAux(nn.Module):
    """Auxiliary classifier: 4x4 average pool, 1x1 conv 128, FC 1024, dropout, FC."""

    def __init__(self, in_chs: int, num_classes: int, drop_rate: float = 0.7) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.conv = ConvBNAct(in_chs, 128, 1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.act = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(drop_rate)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.conv(self.pool(x)), 1)
        return self.fc2(self.dropout(self.act(self.fc1(x))))


def _stem(kind: str, in_chans: int) -> nn.Sequential:
    if kind == "imagenet":
        return nn.Sequential(
            ConvBNAct(in_chans, 64, 7, stride=2),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            ConvBNAct(64, 64, 1),
            ConvBNAct(64, 192, 3),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
        )
    return nn.Sequential(
        ConvBNAct(in_chans, 64, 3),
        ConvBNAct(64, 64, 1),
        ConvBNAct(64, 192, 3),
        nn.MaxPool2d(3, stride=2, ceil_mode=True),
    )


class GoogLeNet(nn.Module):
    """GoogLeNet with BatchNorm (see the module docstring for the differences from the paper).

    Returns logits; in training mode with ``aux_logits`` a ``GoogLeNetOutputs(logits, aux2,
    aux1)`` whose auxiliary losses are weighted by ``AUX_LOSS_WEIGHT``. Init as torchvision:
    truncated normal (std 0.01) conv and linear weights, BatchNorm weight 1 and bias 0.
    """

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        drop_rate: float = 0.4,
        aux_logits: bool = True,
        stem: Stem = "fer",
        conv5x5_kernel: int = 5,
        aux_drop_rate: float = 0.7,
    ) -> None:
        super().__init__()
        if stem not in _STEM_INPUT_SIZES:
            raise InceptionFerError(f"unknown googlenet stem {stem!r}; valid: fer, imagenet")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.default_input_size, self.min_input_size = _STEM_INPUT_SIZES[stem]
        self.stem = _stem(stem, in_chans)
        modules = {
            name: InceptionModule(*cfg, conv5x5_kernel=conv5x5_kernel)
            for name, cfg in _TABLE_1.items()
        }
        self.inception3a, self.inception3b = modules["3a"], modules["3b"]
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a, self.inception4b = modules["4a"], modules["4b"]
        self.inception4c, self.inception4d = modules["4c"], modules["4d"]
        self.inception4e = modules["4e"]
        self.maxpool4 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception5a, self.inception5b = modules["5a"], modules["5b"]
        self.aux1 = GoogLeNetAux(512, num_classes, aux_drop_rate) if aux_logits else None
        self.aux2 = GoogLeNetAux(528, num_classes, aux_drop_rate) if aux_logits else None
        self.num_features = self.inception5b.out_chs
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(drop_rate)
        self.fc = nn.Linear(self.num_features, num_classes)
        init_trunc_normal(self, std=0.01)

    def head_names(self) -> tuple[str, ...]:
        """The submodules that output class scores: the classifier and the auxiliary ones."""
        return ("fc",) if self.aux1 is None else ("fc", "aux1.fc2", "aux2.fc2")

    def _trunk(self, x: torch.Tensor, aux: list[torch.Tensor] | None) -> torch.Tensor:
        """Stem and Inception modules; appends the auxiliary logits to ``aux`` when given."""
        x = self.inception3b(self.inception3a(self.stem(x)))
        x = self.inception4a(self.maxpool3(x))
        if aux is not None and self.aux1 is not None:
            aux.append(self.aux1(x))
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        if aux is not None and self.aux2 is not None:
            aux.append(self.aux2(x))
        x = self.maxpool4(self.inception4e(x))
        return self.inception5b(self.inception5a(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._trunk(x, None)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(torch.flatten(self.avgpool(x), 1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor | GoogLeNetOutputs:
        check_input(x, model="googlenet", in_chans=self.in_chans, min_size=self.min_input_size)
        if self.training and self.aux1 is not None:
            aux: list[torch.Tensor] = []
            logits = self.forward_head(self._trunk(x, aux))
            return GoogLeNetOutputs(logits, aux2=aux[1], aux1=aux[0])
        return self.forward_head(self.forward_features(x))


@register_model
def googlenet(num_classes: int = 7, in_chans: int = 1, **kwargs: Any) -> GoogLeNet:
    """GoogLeNet (Inception-v1) with BatchNorm, paper 5x5 branches and a 48x48 FER stem."""
    return GoogLeNet(num_classes=num_classes, in_chans=in_chans, **kwargs)
