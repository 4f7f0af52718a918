"""Inception building blocks, each usable on its own in any network."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from .batchnorm_act import batch_norm_act, takes_contiguous_path

ActLayer = Callable[..., nn.Module]


class ConvBNAct(nn.Sequential):
    """Convolution, optional BatchNorm, then ReLU (or ``act_layer``): the basic layer of every
    Inception network."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int | tuple[int, int] = 1,
        stride: int = 1,
        padding: int | tuple[int, int] | str | None = None,
        use_bn: bool = True,
        bn_eps: float = 1e-3,
        act_layer: ActLayer = nn.ReLU,
    ) -> None:
        if padding is None:
            ks = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
            padding = (ks[0] // 2, ks[1] // 2)
        layers: list[nn.Module] = [
            nn.Conv2d(in_chs, out_chs, kernel_size, stride=stride, padding=padding, bias=not use_bn)
        ]
        if use_bn:
            layers.append(nn.BatchNorm2d(out_chs, eps=bn_eps))
        layers.append(act_layer(inplace=True))
        super().__init__(*layers)
        self.out_chs = out_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self) == 3:
            conv, bn, act = self
            x = conv(x)
            if takes_contiguous_path(bn, act, x):
                return batch_norm_act(bn, act, x)
            return act(bn(x))
        return super().forward(x)


class ImageStandardize(nn.Module):
    """Per image and channel: subtract the pixels' mean and divide by their standard deviation
    (``sqrt(var + eps)``, so a blank image stays finite). No parameters: it makes a network blind
    to each photo's brightness and contrast. On FER2013 train faces normalised by the dataset's
    mean and std, 99 % of the per-face variances are above 0.15 (median 0.68), so the default
    ``eps`` only matters for near-blank images."""

    def __init__(self, eps: float = 1e-2) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var, mean = torch.var_mean(x, dim=(2, 3), correction=0, keepdim=True)
        return (x - mean) * torch.rsqrt(var + self.eps)


class BranchConcat(nn.Module):
    """Parallel branches whose outputs are concatenated on channels: the shape of every Inception
    module. Diagrams and summaries recognise a multi-branch block by this base class and draw
    ``self.branches`` side by side."""

    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


def _pool_branch(
    pool: nn.Module,
    in_chs: int,
    proj_chs: int,
    use_bn: bool = True,
    act_layer: ActLayer = nn.ReLU,
) -> nn.Sequential:
    """Pooling followed by a 1x1 projection: the fourth branch of most Inception modules."""
    return nn.Sequential(pool, ConvBNAct(in_chs, proj_chs, 1, use_bn=use_bn, act_layer=act_layer))


class NaiveInception(BranchConcat):
    """Figure 2(a) of Szegedy et al. 2014: parallel 1x1, 3x3 and 5x5 convolutions and a 3x3 max
    pool (stride 1), concatenated. Without 1x1 reductions the pool branch keeps all ``in_chs``
    channels, so widths grow module after module."""

    def __init__(self, in_chs: int, c1x1: int, c3x3: int, c5x5: int, use_bn: bool = False) -> None:
        super().__init__(
            [
                ConvBNAct(in_chs, c1x1, 1, use_bn=use_bn),
                ConvBNAct(in_chs, c3x3, 3, use_bn=use_bn),
                ConvBNAct(in_chs, c5x5, 5, use_bn=use_bn),
                nn.MaxPool2d(3, stride=1, padding=1),
            ]
        )
        self.out_chs = c1x1 + c3x3 + c5x5 + in_chs


class InceptionModule(BranchConcat):
    """Figure 2(b) of Szegedy et al. 2014, the GoogLeNet module: 1x1; 1x1 then 3x3; 1x1 then 5x5;
    3x3 max pool then 1x1. ``conv5x5_kernel=3`` gives torchvision's variant of the third branch."""

    def __init__(
        self,
        in_chs: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        use_bn: bool = True,
        conv5x5_kernel: int = 5,
    ) -> None:
        super().__init__(
            [
                ConvBNAct(in_chs, ch1x1, 1, use_bn=use_bn),
                nn.Sequential(
                    ConvBNAct(in_chs, ch3x3red, 1, use_bn=use_bn),
                    ConvBNAct(ch3x3red, ch3x3, 3, use_bn=use_bn),
                ),
                nn.Sequential(
                    ConvBNAct(in_chs, ch5x5red, 1, use_bn=use_bn),
                    ConvBNAct(ch5x5red, ch5x5, conv5x5_kernel, use_bn=use_bn),
                ),
                _pool_branch(nn.MaxPool2d(3, stride=1, padding=1), in_chs, pool_proj, use_bn),
            ]
        )
        self.out_chs = ch1x1 + ch3x3 + ch5x5 + pool_proj


class FactorisedInception(BranchConcat):
    """Figure 5 of Szegedy et al. 2015 (Inception-v3): the GoogLeNet module with its 5x5 branch
    factorised into two 3x3 convolutions (same receptive field, 18/25 of the cost)."""

    def __init__(
        self,
        in_chs: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        act_layer: ActLayer = nn.ReLU,
    ) -> None:
        conv = partial(ConvBNAct, act_layer=act_layer)
        super().__init__(
            [
                conv(in_chs, ch1x1, 1),
                nn.Sequential(conv(in_chs, ch3x3red, 1), conv(ch3x3red, ch3x3, 3)),
                nn.Sequential(
                    conv(in_chs, ch5x5red, 1), conv(ch5x5red, ch5x5, 3), conv(ch5x5, ch5x5, 3)
                ),
                _pool_branch(
                    nn.MaxPool2d(3, stride=1, padding=1), in_chs, pool_proj, act_layer=act_layer
                ),
            ]
        )
        self.out_chs = ch1x1 + ch3x3 + ch5x5 + pool_proj


class GridReduction(BranchConcat):
    """Figure 10 of Szegedy et al. 2015: halve the grid with parallel stride-2 branches (3x3;
    1x1-3x3-3x3; 3x3 max pool) instead of pooling before or after a module. Padded, so an even
    H x W becomes exactly H/2 x W/2."""

    def __init__(
        self,
        in_chs: int,
        ch3x3: int,
        ch3x3dbl_red: int,
        ch3x3dbl: int,
        act_layer: ActLayer = nn.ReLU,
    ) -> None:
        conv = partial(ConvBNAct, act_layer=act_layer)
        super().__init__(
            [
                conv(in_chs, ch3x3, 3, stride=2),
                nn.Sequential(
                    conv(in_chs, ch3x3dbl_red, 1),
                    conv(ch3x3dbl_red, ch3x3dbl, 3),
                    conv(ch3x3dbl, ch3x3dbl, 3, stride=2),
                ),
                nn.MaxPool2d(3, stride=2, padding=1),
            ]
        )
        self.out_chs = ch3x3 + ch3x3dbl + in_chs


class InceptionA(BranchConcat):
    """Inception-v3 35x35 module (torchvision ``InceptionA``): 1x1; 1x1-5x5; 1x1-3x3-3x3 (the
    factorised 5x5); 3x3 average pool then 1x1. Output ``224 + pool_features`` channels."""

    def __init__(self, in_chs: int, pool_features: int) -> None:
        super().__init__(
            [
                ConvBNAct(in_chs, 64, 1),
                nn.Sequential(ConvBNAct(in_chs, 48, 1), ConvBNAct(48, 64, 5)),
                nn.Sequential(ConvBNAct(in_chs, 64, 1), ConvBNAct(64, 96, 3), ConvBNAct(96, 96, 3)),
                _pool_branch(nn.AvgPool2d(3, stride=1, padding=1), in_chs, pool_features),
            ]
        )
        self.out_chs = 224 + pool_features


class InceptionB(BranchConcat):
    """Inception-v3 grid reduction 35x35 -> 17x17 (torchvision ``InceptionB``), unpadded:
    3x3 stride 2; 1x1-3x3-3x3 stride 2; 3x3 max pool stride 2. Output ``480 + in_chs``."""

    def __init__(self, in_chs: int) -> None:
        super().__init__(
            [
                ConvBNAct(in_chs, 384, 3, stride=2, padding=0),
                nn.Sequential(
                    ConvBNAct(in_chs, 64, 1),
                    ConvBNAct(64, 96, 3),
                    ConvBNAct(96, 96, 3, stride=2, padding=0),
                ),
                nn.MaxPool2d(3, stride=2),
            ]
        )
        self.out_chs = 480 + in_chs


class InceptionC(BranchConcat):
    """Inception-v3 17x17 module (torchvision ``InceptionC``, figure 6 of the paper): n x n
    convolutions factorised into 1 x n then n x 1. Output 768 channels."""

    def __init__(self, in_chs: int, channels_7x7: int, n: int = 7) -> None:
        c7 = channels_7x7
        row, col = (1, n), (n, 1)
        super().__init__(
            [
                ConvBNAct(in_chs, 192, 1),
                nn.Sequential(
                    ConvBNAct(in_chs, c7, 1), ConvBNAct(c7, c7, row), ConvBNAct(c7, 192, col)
                ),
                nn.Sequential(
                    ConvBNAct(in_chs, c7, 1),
                    ConvBNAct(c7, c7, col),
                    ConvBNAct(c7, c7, row),
                    ConvBNAct(c7, c7, col),
                    ConvBNAct(c7, 192, row),
                ),
                _pool_branch(nn.AvgPool2d(3, stride=1, padding=1), in_chs, 192),
            ]
        )
        self.out_chs = 768


class InceptionD(BranchConcat):
    """Inception-v3 grid reduction 17x17 -> 8x8 (torchvision ``InceptionD``), unpadded:
    1x1-3x3 stride 2; 1x1-1x7-7x1-3x3 stride 2; 3x3 max pool stride 2. Output ``512 + in_chs``."""

    def __init__(self, in_chs: int) -> None:
        super().__init__(
            [
                nn.Sequential(
                    ConvBNAct(in_chs, 192, 1), ConvBNAct(192, 320, 3, stride=2, padding=0)
                ),
                nn.Sequential(
                    ConvBNAct(in_chs, 192, 1),
                    ConvBNAct(192, 192, (1, 7)),
                    ConvBNAct(192, 192, (7, 1)),
                    ConvBNAct(192, 192, 3, stride=2, padding=0),
                ),
                nn.MaxPool2d(3, stride=2),
            ]
        )
        self.out_chs = 512 + in_chs


class InceptionE(BranchConcat):
    """Inception-v3 8x8 module (torchvision ``InceptionE``, figure 7 of the paper): the 3x3
    convolutions split into parallel 1x3 and 3x1 (nested ``BranchConcat``). Output 2048."""

    def __init__(self, in_chs: int) -> None:
        super().__init__(
            [
                ConvBNAct(in_chs, 320, 1),
                nn.Sequential(ConvBNAct(in_chs, 384, 1), _split_1x3_3x1(384, 384)),
                nn.Sequential(
                    ConvBNAct(in_chs, 448, 1), ConvBNAct(448, 384, 3), _split_1x3_3x1(384, 384)
                ),
                _pool_branch(nn.AvgPool2d(3, stride=1, padding=1), in_chs, 192),
            ]
        )
        self.out_chs = 2048


def _split_1x3_3x1(in_chs: int, out_chs: int) -> BranchConcat:
    """Parallel 1x3 and 3x1 convolutions, concatenated (2 * ``out_chs`` channels)."""
    return BranchConcat([ConvBNAct(in_chs, out_chs, (1, 3)), ConvBNAct(in_chs, out_chs, (3, 1))])


class SeparableConv2d(nn.Sequential):
    """Depthwise then pointwise convolution, no bias or activation (Keras ``SeparableConv2D``
    with ``use_bias=False`` as mini-Xception uses it)."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3) -> None:
        super().__init__(
            nn.Conv2d(
                in_chs, in_chs, kernel_size, padding=kernel_size // 2, groups=in_chs, bias=False
            ),
            nn.Conv2d(in_chs, out_chs, 1, bias=False),
        )
        self.out_chs = out_chs


class XceptionBlock(nn.Module):
    """The residual module of mini-Xception (Arriaga et al. 2017): separable conv, BN, ReLU,
    separable conv, BN, 3x3 max pool stride 2, plus a strided 1x1 conv + BN shortcut."""

    def __init__(self, in_chs: int, out_chs: int, bn_eps: float = 1e-3) -> None:
        super().__init__()
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_chs, out_chs, 1, stride=2, bias=False),
            nn.BatchNorm2d(out_chs, eps=bn_eps),
        )
        self.body = nn.Sequential(
            SeparableConv2d(in_chs, out_chs),
            nn.BatchNorm2d(out_chs, eps=bn_eps),
            nn.ReLU(inplace=True),
            SeparableConv2d(out_chs, out_chs),
            nn.BatchNorm2d(out_chs, eps=bn_eps),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        self.out_chs = out_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)
