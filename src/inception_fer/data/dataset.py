"""The in-memory dataset types: one ``Split`` per partition and the ``FerData`` that holds them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError

TRAIN, VAL, TEST = 0, 1, 2
"""Split codes stored per image in ``RawData.tags`` (FER2013 Training, PublicTest, PrivateTest)."""

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True, eq=False)
class Split:
    """One split in memory: ``images`` (N, H, W) uint8 C-contiguous, ``labels`` (N,) int64."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self, num_classes: int) -> np.ndarray:
        """Images per class index, shape (num_classes,)."""
        return np.bincount(self.labels, minlength=num_classes)


@dataclass(frozen=True, eq=False)
class FerData:
    """A loaded dataset: train, val and (where the source has one) test splits."""

    train: Split
    val: Split
    test: Split | None
    class_names: tuple[str, ...]
    source: str
    bad_files: tuple[str, ...] = ()

    def split(self, name: str) -> Split:
        """The split called ``name`` ('train', 'val' or 'test'); a DataError if it is absent."""
        if name not in SPLIT_NAMES:
            raise DataError(f"unknown split {name!r}; valid splits: {', '.join(SPLIT_NAMES)}")
        found: Split | None = getattr(self, name)
        if found is None:
            raise DataError(
                f"this {self.source} dataset has no {name} split "
                "(FER2013 has one only where PrivateTest images or an X_test.npy are present)"
            )
        return found


@dataclass(frozen=True, eq=False)
class RawData:
    """A decoded source before the train/val split: what the cache stores.

    ``tags`` gives each image's split code (TRAIN, VAL, TEST) as the source assigns it.
    """

    images: np.ndarray
    labels: np.ndarray
    tags: np.ndarray
    class_names: tuple[str, ...]
    source: str
    bad_files: tuple[str, ...] = ()
    n_resized: int = 0
