"""Turn uint8 image batches into model input: [0, 1] floats and the train split's mean / std."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DataError

_CHUNK = 8192


def compute_mean_std(images: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of uint8 ``images`` in [0, 1] scale (exact, via a histogram)."""
    if images.dtype != np.uint8:
        raise DataError(f"compute_mean_std expects uint8 images, got {images.dtype}")
    if images.size == 0:
        raise DataError("compute_mean_std needs at least one image")
    flat = images.reshape(len(images), -1) if images.ndim > 1 else images.reshape(1, -1)
    histogram = np.zeros(256, dtype=np.int64)
    for start in range(0, len(flat), _CHUNK):
        histogram += np.bincount(flat[start : start + _CHUNK].ravel(), minlength=256)
    levels = np.arange(256, dtype=np.float64) / 255.0
    total = histogram.sum()
    mean = float((histogram * levels).sum() / total)
    variance = float((histogram * (levels - mean) ** 2).sum() / total)
    return mean, variance**0.5


def to_float(batch: torch.Tensor) -> torch.Tensor:
    """uint8 images (B, H, W) or (B, 1, H, W) as float32 (B, 1, H, W) in [0, 1], same device."""
    if batch.dtype != torch.uint8:
        raise DataError(f"to_float expects a uint8 tensor, got {batch.dtype}")
    if batch.dim() == 3:
        batch = batch.unsqueeze(1)
    if batch.dim() != 4 or batch.shape[1] != 1:
        raise DataError(
            f"to_float expects shape (B, H, W) or (B, 1, H, W), got {tuple(batch.shape)}"
        )
    return batch.float().div_(255.0)
