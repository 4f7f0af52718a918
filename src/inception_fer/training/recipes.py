"""Named training recipes: measured hyper-parameter sets (see docs/experiments.md)."""

from __future__ import annotations

from typing import Any

FER_RECIPE: dict[str, Any] = {
    "optimizer": "adamw",
    "lr": 3e-3,
    "weight_decay": 0.05,
    "schedule": "onecycle",
    "label_smoothing": 0.1,
    "batch_size": 128,
    "augment": "default",
}
"""The InceptionFER recipe of the first sweep: AdamW, one-cycle, label smoothing 0.1, batch 128,
default augmentation (flip, translate, rotate, scale, random erasing)."""
