"""InceptionFER: a compact Inception family for 48x48 grayscale faces.

A full-resolution 3x3 stem, then one stage per grid size (48 -> 24 -> 12 -> 6 by default), each a
padded ``GridReduction`` followed by ``FactorisedInception`` modules (BatchNorm, 5x5 branch as
two 3x3 convs), global average pooling, dropout and one linear layer: no dense head.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import torch
from torch import nn

from ..errors import InceptionFerError
from .blocks import ActLayer, ConvBNAct, FactorisedInception, GridReduction, ImageStandardize
from .layers import check_input
from .registry import register_model


def inception_widths(width: int) -> tuple[int, int, int, int, int, int]:
    """Branch widths of a FactorisedInception module with ``width`` output channels:
    #1x1 1/4, #3x3 reduce 1/4, #3x3 3/8, #5x5 reduce 1/8, #5x5 (two 3x3) 1/4, pool proj 1/8."""
    eighth = width // 8
    return 2 * eighth, 2 * eighth, 3 * eighth, eighth, 2 * eighth, eighth


ACT_LAYERS: dict[str, ActLayer] = {"relu": nn.ReLU, "silu": nn.SiLU, "hardswish": nn.Hardswish}


def _stage(in_chs: int, width: int, depth: int, act_layer: ActLayer) -> nn.Sequential:
    grown = width - in_chs
    ch3x3 = grown // 2
    ch3x3dbl = grown - ch3x3
    layers: list[nn.Module] = [GridReduction(in_chs, ch3x3, ch3x3dbl // 2, ch3x3dbl, act_layer)]
    layers += [
        FactorisedInception(width, *inception_widths(width), act_layer=act_layer)
        for _ in range(depth)
    ]
    return nn.Sequential(*layers)


def _validate(stem_width: int, widths: Sequence[int], depths: Sequence[int], act: str) -> None:
    if act not in ACT_LAYERS:
        raise InceptionFerError(
            f"InceptionFER act must be one of {', '.join(ACT_LAYERS)}, got {act!r}"
        )
    if not widths or len(widths) != len(depths):
        raise InceptionFerError(
            f"InceptionFER needs one depth per stage width, got widths={tuple(widths)} "
            f"and depths={tuple(depths)}"
        )
    for prev, width in pairwise((stem_width, *widths)):
        if width % 8 or width - prev < 16:
            raise InceptionFerError(
                f"InceptionFER stage widths must be multiples of 8, each at least 16 more than "
                f"the one before (stem {stem_width}), got {tuple(widths)}"
            )
    if min(depths) < 0:
        raise InceptionFerError(f"InceptionFER depths must be 0 or more, got {tuple(depths)}")


class InceptionFER(nn.Module):
    """The InceptionFER network (see the module docstring).

    ``stem_width``: channels of the two 3x3 stem convs at full resolution; ``widths`` and
    ``depths``: per stage, the channels and the number of Inception modules after its grid
    reduction. Each stage halves the grid; ``min_input_size`` is ``2 ** len(widths)`` (one pixel
    in the last stage). ``standardize_input`` makes the network standardise each image itself
    (``ImageStandardize``: zero mean, unit variance per face); ``act`` is ``relu``, ``silu`` or
    ``hardswish`` (every activation; none has parameters, so the weights keep their names).
    Kaiming-normal conv init, BatchNorm 1 / 0, linear N(0, 0.01).

    Registered sizes (7 classes; multiply-adds per 48x48x1 image, torchinfo ``total_mult_adds``):

    ===============  ==========  ===============  =========  ======  ===========
    name             stem_width  widths           depths     params  mult-adds
    ===============  ==========  ===============  =========  ======  ===========
    inception_fer_s  16          (40, 80, 160)    (1, 2, 2)  234 k   26.0 M
    inception_fer_f  16          (64, 128, 256)   (1, 2, 2)  595 k   60.2 M
    inception_fer_m  32          (80, 160, 320)   (1, 2, 2)  931 k   103.2 M
    inception_fer_l  48          (128, 256, 512)  (2, 4, 3)  3.38 M  350.7 M
    ===============  ==========  ===============  =========  ======  ===========

    ``inception_fer_f`` ("fast") is shaped for int8 CPU inference and short CPU training: the
    narrow stem of ``_s`` (full-resolution layers cost the most per multiply-add) and stage widths
    that are multiples of 64, so every branch has a multiple of 8 channels. On 2 cores it runs
    1.5x as many int8 faces/s as ``_m`` and trains 1.55x as fast (``docs/experiments.md``).
    """

    default_input_size: int = 48

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        drop_rate: float = 0.2,
        stem_width: int = 16,
        widths: Sequence[int] = (40, 80, 160),
        depths: Sequence[int] = (1, 2, 2),
        standardize_input: bool = False,
        act: str = "relu",
    ) -> None:
        super().__init__()
        _validate(stem_width, widths, depths, act)
        act_layer = ACT_LAYERS[act]
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.min_input_size = 2 ** len(widths)
        self.standardize = ImageStandardize() if standardize_input else nn.Identity()
        self.stem = nn.Sequential(
            ConvBNAct(in_chans, stem_width, 3, act_layer=act_layer),
            ConvBNAct(stem_width, stem_width, 3, act_layer=act_layer),
        )
        chs = (stem_width, *widths)
        self.stages = nn.Sequential(
            *(_stage(chs[i], chs[i + 1], depth, act_layer) for i, depth in enumerate(depths))
        )
        self.num_features = chs[-1]
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(drop_rate)
        self.fc = nn.Linear(self.num_features, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.01)
                nn.init.zeros_(module.bias)

    def head_names(self) -> tuple[str, ...]:
        """The submodules that output class scores."""
        return ("fc",)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(self.standardize(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(torch.flatten(self.pool(x), 1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, model="InceptionFER", in_chans=self.in_chans, min_size=self.min_input_size)
        return self.forward_head(self.forward_features(x))


_CONFIGS: dict[str, dict[str, Any]] = {
    "s": {"stem_width": 16, "widths": (40, 80, 160), "depths": (1, 2, 2)},
    "f": {"stem_width": 16, "widths": (64, 128, 256), "depths": (1, 2, 2)},
    "m": {"stem_width": 32, "widths": (80, 160, 320), "depths": (1, 2, 2)},
    "l": {"stem_width": 48, "widths": (128, 256, 512), "depths": (2, 4, 3)},
}


def _create(size: str, num_classes: int, in_chans: int, kwargs: dict[str, Any]) -> InceptionFER:
    cfg = {**_CONFIGS[size], **kwargs}
    return InceptionFER(num_classes=num_classes, in_chans=in_chans, **cfg)


@register_model
def inception_fer_s(num_classes: int = 7, in_chans: int = 1, **kwargs: Any) -> InceptionFER:
    """InceptionFER small: 0.23 M parameters, 26 M multiply-adds at 48x48x1."""
    return _create("s", num_classes, in_chans, kwargs)


@register_model
def inception_fer_f(num_classes: int = 7, in_chans: int = 1, **kwargs: Any) -> InceptionFER:
    """InceptionFER fast: 0.60 M parameters, 60 M multiply-adds at 48x48x1, int8-friendly."""
    return _create("f", num_classes, in_chans, kwargs)


@register_model
def inception_fer_f_silu(num_classes: int = 7, in_chans: int = 1, **kwargs: Any) -> InceptionFER:
    """``inception_fer_f`` with SiLU activations: more accurate after the same hour of training,
    slower to run (most of all in int8)."""
    if kwargs.setdefault("act", "silu") != "silu":
        raise InceptionFerError(
            f"inception_fer_f_silu has SiLU activations, not act={kwargs['act']!r}; "
            "build inception_fer_f with that act instead"
        )
    return _create("f", num_classes, in_chans, kwargs)


@register_model
def inception_fer_m(num_classes: int = 7, in_chans: int = 1, **kwargs: Any) -> InceptionFER:
    """InceptionFER medium: 0.93 M parameters, 103 M multiply-adds at 48x48x1."""
    return _create("m", num_classes, in_chans, kwargs)


@register_model
def inception_fer_l(num_classes: int = 7, in_chans: int = 1, **kwargs: Any) -> InceptionFER:
    """InceptionFER large: 3.4 M parameters, 351 M multiply-adds at 48x48x1."""
    return _create("l", num_classes, in_chans, kwargs)
