"""An exponential moving average (EMA) of a network's weights, updated after every optimizer step.

The average is what gets validated and saved when ``--ema DECAY`` is on: late in a run it sits
between the noisy steps of the last few epochs (Polyak averaging; timm's ``ModelEma``). The
decay warms up as ``min(decay, (1 + t) / (10 + t))`` after ``t`` updates, so the average forgets
the random initial weights within the first few hundred steps instead of ``1 / (1 - decay)``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """The running average of ``model``'s floating-point parameters and buffers (BatchNorm
    statistics included; integer buffers such as ``num_batches_tracked`` are copied)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)

    def current_decay(self) -> float:
        """The decay the next update uses (warmed up over the first updates)."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s present weights."""
        weight = 1.0 - self.current_decay()
        averaged, live = [], []
        pairs = zip(
            [*self.module.parameters(), *self.module.buffers()],
            [*model.parameters(), *model.buffers()],
            strict=True,
        )
        for mine, theirs in pairs:
            if mine.is_floating_point():
                averaged.append(mine)
                live.append(theirs.to(mine.dtype))
            else:
                mine.copy_(theirs)
        torch._foreach_lerp_(averaged, live, weight)
        self.updates += 1
