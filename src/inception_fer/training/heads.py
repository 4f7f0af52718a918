"""The classifier head and the backbone: freezing, frozen BatchNorm, per-part learning rates.

A model's head is what its ``head_names()`` lists: the layers that output class scores (the
classifier and any auxiliary classifier's last layer). They depend on the class list, so a new
class list re-initialises them, and ``--freeze-backbone`` trains them alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import nn

from ..errors import InceptionFerError


def head_names(model: nn.Module) -> tuple[str, ...]:
    """The names of ``model``'s head submodules; a clear error for a model without
    ``head_names``."""
    method = getattr(model, "head_names", None)
    if method is None:
        raise InceptionFerError(
            f"{type(model).__name__} does not say which layers are its head (no head_names()), "
            "so it cannot be fine-tuned with a new class list, a frozen backbone or --head-lr-mult"
        )
    names: tuple[str, ...] = method()
    return names


def in_head(name: str, heads: tuple[str, ...]) -> bool:
    """Whether the parameter, buffer or module ``name`` belongs to one of the ``heads``."""
    return any(name == head or name.startswith(f"{head}.") for head in heads)


def set_backbone_trainable(model: nn.Module, trainable: bool) -> None:
    """Turn gradients of every parameter outside the head on or off (the head always trains)."""
    heads = head_names(model)
    for name, param in model.named_parameters():
        param.requires_grad_(trainable or in_head(name, heads))


def freeze_backbone_batchnorm(model: nn.Module) -> None:
    """Put the backbone's BatchNorm layers in eval mode: a frozen backbone normalises with its
    running statistics and leaves them unchanged. Call after ``model.train()``."""
    heads = head_names(model)
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not in_head(name, heads):
            module.eval()


def parameter_groups(model: nn.Module, lr: float, head_lr_mult: float) -> Iterable[Any]:
    """The optimizer's parameters: all in one group, or with ``head_lr_mult`` != 1 a backbone
    group at ``lr`` (first, so the logged rate is the backbone's) and a head group at
    ``lr * head_lr_mult``."""
    if head_lr_mult == 1.0:
        return model.parameters()
    heads = head_names(model)
    named = list(model.named_parameters())
    return [
        {"params": [p for n, p in named if not in_head(n, heads)], "lr": lr},
        {"params": [p for n, p in named if in_head(n, heads)], "lr": lr * head_lr_mult},
    ]
