"""FER2013 in every form users have it (CSV, Kaggle image folders, .npy arrays, class folders),
decoded once into cached uint8 arrays, plus batch augmentation and normalisation helpers."""

from __future__ import annotations

from .augment import AugmentConfig, BatchAugment
from .cache import default_cache_dir
from .dataset import FerData, Split
from .loader import load_fer
from .normalize import compute_mean_std, to_float

__all__ = [
    "AugmentConfig",
    "BatchAugment",
    "FerData",
    "Split",
    "compute_mean_std",
    "default_cache_dir",
    "load_fer",
    "to_float",
]
