"""Optimizers and learning-rate schedules by name, as the CLI offers them."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR, ReduceLROnPlateau

from ..errors import InceptionFerError

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine", "onecycle", "plateau")
Scheduler = LRScheduler | ReduceLROnPlateau


def build_optimizer(
    name: str,
    params: Iterable[Any],
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    fused: bool | None = None,
) -> Optimizer:
    """Adam, AdamW, SGD (Nesterov momentum) or RMSprop; fused kernels where the build has them."""
    if lr <= 0:
        raise InceptionFerError(f"learning rate must be positive, got {lr}")
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        return cls(params, lr=lr, weight_decay=weight_decay, fused=fused)
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay
        )
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay, momentum=momentum)
    raise InceptionFerError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def exempt_norm_and_bias(params: Iterable[Any]) -> list[dict[str, Any]]:
    """``params`` (tensors, or parameter groups as dicts) with every parameter of fewer than two
    dimensions (normalisation scales and shifts, biases) moved into a group of its own with no
    weight decay, beside the group it came from and with that group's other settings (timm's
    ``filter_bias_and_bn``). Groups left empty are dropped; the first stays first."""
    items = list(params)
    groups = items if items and isinstance(items[0], dict) else [{"params": items}]
    split: list[dict[str, Any]] = []
    for group in groups:
        tensors = list(group["params"])
        decayed = {**group, "params": [p for p in tensors if p.ndim >= 2]}
        exempt = {**group, "params": [p for p in tensors if p.ndim < 2], "weight_decay": 0.0}
        split.extend(g for g in (decayed, exempt) if g["params"])
    return split


def build_scheduler(
    name: str,
    optimizer: Optimizer,
    epochs: int,
    steps_per_epoch: int,
    warmup_epochs: float = 0.0,
) -> Scheduler:
    """A schedule stepped once per batch (``constant``, ``cosine``, ``onecycle``) or once per epoch
    on the validation loss (``plateau``). ``warmup_epochs`` ramps the rate up linearly first."""
    total = max(1, epochs * steps_per_epoch)
    warmup = int(warmup_epochs * steps_per_epoch)
    if name == "constant":
        return LambdaLR(optimizer, _Warmup(warmup, total, cosine=False))
    if name == "cosine":
        return LambdaLR(optimizer, _Warmup(warmup, total, cosine=True))
    if name == "onecycle":
        max_lrs = [group["lr"] for group in optimizer.param_groups]
        pct = min(0.5, max(warmup / total, 0.05)) if warmup else 0.25
        return OneCycleLR(optimizer, max_lr=max_lrs, total_steps=total, pct_start=pct)
    if name == "plateau":
        return ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=3)
    raise InceptionFerError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")


class _Warmup:
    """Multiplier for LambdaLR: linear warm-up, then constant or cosine decay to zero."""

    def __init__(self, warmup: int, total: int, cosine: bool) -> None:
        self.warmup, self.total, self.cosine = warmup, total, cosine

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        if not self.cosine:
            return 1.0
        progress = (step - self.warmup) / max(1, self.total - self.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
