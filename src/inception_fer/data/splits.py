"""Turn a decoded source into train / val / test splits (after the cache, so no re-decode)."""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import DataError
from .dataset import TEST, TRAIN, VAL, FerData, RawData, Split

DEFAULT_VAL_FRACTION = 0.1
"""Fraction of train used as val when the source has no val split and none was asked for."""


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, val) positions: ``round(fraction * n)`` of each class to val, at random
    with ``seed``, always leaving at least one image of each class in train."""
    rng = np.random.default_rng(seed)
    val_parts = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        n_val = min(int(len(members) * fraction + 0.5), len(members) - 1)
        val_parts.append(rng.permutation(members)[:n_val])
    val = np.sort(np.concatenate(val_parts)) if val_parts else np.zeros(0, dtype=np.int64)
    train = np.setdiff1d(np.arange(len(labels)), val, assume_unique=True)
    return train, val


def _take(raw: RawData, index: np.ndarray) -> Split:
    return Split(
        images=np.ascontiguousarray(raw.images[index]),
        labels=np.ascontiguousarray(raw.labels[index], dtype=np.int64),
    )


def make_splits(raw: RawData, val_fraction: float | None, seed: int) -> FerData:
    """Split ``raw``: val is the source's val (PublicTest, X_val, val/) unless ``val_fraction`` is
    given or the source has none; then it is that stratified fraction of train (default 0.1)."""
    train_index = np.flatnonzero(raw.tags == TRAIN)
    val_index = np.flatnonzero(raw.tags == VAL)
    test_index = np.flatnonzero(raw.tags == TEST)
    if len(train_index) == 0:
        raise DataError(f"the {raw.source} source has no training images")
    if val_fraction is None and len(val_index):
        train, val = _take(raw, train_index), _take(raw, val_index)
    else:
        fraction = DEFAULT_VAL_FRACTION if val_fraction is None else val_fraction
        if len(val_index):
            warnings.warn(
                f"val_fraction={fraction} given: validating on that fraction of train; the "
                f"{len(val_index)} images of the source's own val split are not used",
                stacklevel=3,
            )
        kept, held = stratified_split(raw.labels[train_index], fraction, seed)
        if len(held) == 0:
            raise DataError(
                f"val_fraction={fraction} of {len(train_index)} training images leaves no "
                "validation images; use a larger fraction or more images"
            )
        train, val = _take(raw, train_index[kept]), _take(raw, train_index[held])
    return FerData(
        train=train,
        val=val,
        test=_take(raw, test_index) if len(test_index) else None,
        class_names=raw.class_names,
        source=raw.source,
        bad_files=raw.bad_files,
    )
