"""Inception building blocks, each usable on its own in any network."""

from __future__ import annotations

import torch
from torch import nn


class ConvBNAct(nn.Sequential):
    """Convolution, optional BatchNorm, then ReLU: the basic layer of every Inception network."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int | tuple[int, int] = 1,
        stride: int = 1,
        padding: int | tuple[int, int] | str | None = None,
        use_bn: bool = True,
        bn_eps: float = 1e-3,
    ) -> None:
        if padding is None:
            ks = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
            padding = (ks[0] // 2, ks[1] // 2)
        layers: list[nn.Module] = [
            nn.Conv2d(in_chs, out_chs, kernel_size, stride=stride, padding=padding, bias=not use_bn)
        ]
        if use_bn:
            layers.append(nn.BatchNorm2d(out_chs, eps=bn_eps))
        layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)
        self.out_chs = out_chs


class BranchConcat(nn.Module):
    """Parallel branches whose outputs are concatenated on channels: the shape of every Inception
    module. Diagrams and summaries recognise a multi-branch block by this base class and draw
    ``self.branches`` side by side."""

    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)
