"""MTCNN's three networks (Zhang et al. 2016) in PyTorch, loading the Keras weights of the mtcnn
wheel.

Inputs are RGB, NCHW, scaled as ``(pixel - 127.5) / 128``. Each network returns its box regression
(dx1, dy1, dx2, dy2, relative to the box size) and the face probability; ONet also returns the five
landmarks as (x1..x5, y1..y5) relative to the box.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError


def _conv(cin: int, cout: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k), nn.PReLU(cout)]


def _flatten_keras(x: torch.Tensor) -> torch.Tensor:
    """Flatten NCHW in the (W, H, C) order of the Keras model's Permute((2, 1, 3)) + Flatten."""
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class PNet(nn.Module):
    """Proposal network: fully convolutional, a 12x12 window every 2 pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv(3, 10, 3),
            nn.MaxPool2d(2, 2, ceil_mode=True),
            *_conv(10, 16, 3),
            *_conv(16, 32, 3),
        )
        self.box = nn.Conv2d(32, 4, 1)
        self.cls = nn.Conv2d(32, 2, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)
        return self.box(features), torch.softmax(self.cls(features), dim=1)[:, 1]


class RNet(nn.Module):
    """Refinement network on 24x24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv(3, 28, 3),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            *_conv(28, 48, 3),
            nn.MaxPool2d(3, 2),
            *_conv(48, 64, 2),
        )
        self.fc = nn.Sequential(nn.Linear(576, 128), nn.PReLU(128))
        self.box = nn.Linear(128, 4)
        self.cls = nn.Linear(128, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.fc(_flatten_keras(self.body(x)))
        return self.box(features), torch.softmax(self.cls(features), dim=1)[:, 1]


class ONet(nn.Module):
    """Output network on 48x48 crops, with the five landmarks."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv(3, 32, 3),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            *_conv(32, 64, 3),
            nn.MaxPool2d(3, 2),
            *_conv(64, 64, 3),
            nn.MaxPool2d(2, 2, ceil_mode=True),
            *_conv(64, 128, 2),
        )
        self.fc = nn.Sequential(nn.Linear(1152, 256), nn.PReLU(256))
        self.box = nn.Linear(256, 4)
        self.landmarks = nn.Linear(256, 10)
        self.cls = nn.Linear(256, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.fc(_flatten_keras(self.body(x)))
        probability = torch.softmax(self.cls(features), dim=1)[:, 1]
        return self.box(features), self.landmarks(features), probability


def load_keras_weights(net: nn.Module, arrays: list[np.ndarray]) -> nn.Module:
    """Copy Keras-layout arrays (in the Keras layer order) into ``net``; returns it in eval mode.

    Each network declares its layers in the Keras model's order, so ``net.parameters()`` lists
    them as ``model.get_weights()`` did.
    """
    params = list(net.parameters())
    if len(params) != len(arrays):
        raise CheckpointError(
            f"{type(net).__name__} needs {len(params)} weight arrays, the file has {len(arrays)}"
        )
    with torch.no_grad():
        for param, array in zip(params, arrays, strict=True):
            value = _to_torch_layout(array, param.ndim)
            if tuple(value.shape) != tuple(param.shape):
                raise CheckpointError(
                    f"{type(net).__name__} weight of shape {tuple(param.shape)} "
                    f"got an array of shape {array.shape}"
                )
            param.copy_(value)
    return net.eval()


def _to_torch_layout(array: np.ndarray, ndim: int) -> torch.Tensor:
    """Keras conv kernel (kh, kw, in, out) -> (out, in, kh, kw); dense (in, out) -> (out, in)."""
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if tensor.ndim == 4:
        return tensor.permute(3, 2, 0, 1).contiguous()
    if tensor.ndim == 2 and ndim == 2:
        return tensor.t().contiguous()
    return tensor.reshape(-1) if ndim == 1 else tensor
