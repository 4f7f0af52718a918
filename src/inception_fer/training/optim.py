"""Optimizers and learning-rate schedules by name, as the CLI offers them."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR, ReduceLROnPlateau

from ..errors import InceptionFerError
from .muon import MuonAdamW

OPTIMIZERS = ("adam", "adamw", "muon", "sgd", "rmsprop")
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
    """Adam, AdamW, Muon (``MuonAdamW``), SGD (Nesterov momentum) or RMSprop; fused kernels where
    the build has them."""
    if lr <= 0:
        raise InceptionFerError(f"learning rate must be positive, got {lr}")
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        return cls(params, lr=lr, weight_decay=weight_decay, fused=fused)
    if name == "muon":
        return MuonAdamW(params, lr=lr, weight_decay=weight_decay)
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
        return _OneCycle(optimizer, max_lrs, total, warmup)
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


def resize_schedule(scheduler: Scheduler, epochs: int, steps_per_epoch: int) -> None:
    """Make ``scheduler`` the schedule ``build_scheduler`` gives an ``epochs``-epoch run, from the
    step it has reached: for a run whose length changes part-way (``--resume --epochs``, a time
    budget re-planned). The rate of the next step follows the new length from the step after it.
    ``plateau`` has no length."""
    total = max(1, epochs * steps_per_epoch)
    if isinstance(scheduler, _OneCycle):
        scheduler.resize(total)
    elif isinstance(scheduler, LambdaLR):
        for multiplier in scheduler.lr_lambdas:
            if isinstance(multiplier, _Warmup):
                multiplier.total = total


class _OneCycle(OneCycleLR):
    """torch's two-phase ``OneCycleLR`` (cosine warm-up, then cosine annealing) whose length can
    change part-way; ``warmup`` steps (0: a quarter of the run) set its first phase."""

    def __init__(self, optimizer: Optimizer, max_lrs: list[float], total: int, warmup: int) -> None:
        self.warmup = warmup
        super().__init__(
            optimizer, max_lr=max_lrs, total_steps=total, pct_start=_warmup_fraction(warmup, total)
        )

    def resize(self, total: int) -> None:
        """``total`` steps in all from now on (the steps already taken stay taken)."""
        if total < self.last_epoch:
            raise InceptionFerError(
                f"a one-cycle schedule at step {self.last_epoch} cannot be {total} steps long"
            )
        warm_up, anneal = self._schedule_phases
        warm_up["end_step"] = float(_warmup_fraction(self.warmup, total) * total) - 1
        anneal["end_step"] = total - 1
        self.total_steps = total


def _warmup_fraction(warmup: int, total: int) -> float:
    """The one-cycle's first phase as a fraction of the run: ``warmup`` steps (kept between 5 %
    and half of the run), or a quarter without one."""
    return min(0.5, max(warmup / total, 0.05)) if warmup else 0.25
