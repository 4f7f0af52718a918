"""``.npy`` arrays as tutorials save them: X_train/y_train, X_test/y_test, optional X_val/y_val.

Images may be (N, H, W), (N, H, W, C) or (N, C, H, W) with C in 1, 3 (RGB, converted to gray) or 4
(alpha dropped), or flat (N, H*W); uint8 or any integer type in 0..255, or float in [0, 1] or
[0, 255] (told apart by the maximum). Labels are class indices (N,) or one-hot / scores (N, K).
``X_test`` is the test split; val is ``X_val`` where present, else split off train by ``load_fer``.
"""

from __future__ import annotations

import math
import os

import numpy as np

from ..errors import DataError
from .dataset import TEST, TRAIN, VAL, RawData
from .images import fit_size

_SPLITS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (TRAIN, ("train",)),
    (VAL, ("val", "valid", "validation")),
    (TEST, ("test",)),
)
_RGB_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_CHUNK = 4096


def find_npy(folder: str) -> dict[str, str]:
    """Lower-case file name -> path of the .npy files in ``folder``."""
    with os.scandir(folder) as entries:
        return {
            entry.name.lower(): entry.path
            for entry in entries
            if entry.name.lower().endswith(".npy") and entry.is_file()
        }


def _load(path: str) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"cannot read {path} as a numpy array: {error}") from None
    if not isinstance(array, np.ndarray) or array.ndim == 0:
        raise DataError(f"{path} does not hold an array of images or labels")
    return array


def _as_nhwc(x: np.ndarray, path: str) -> np.ndarray:
    """View images as (N, H, W, C)."""
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1]:
            raise DataError(f"{path} has shape {x.shape}: {x.shape[1]} is not a square image")
        return x.reshape(len(x), side, side, 1)
    if x.ndim == 3:
        return x[..., None]
    if x.ndim == 4 and x.shape[3] in (1, 3, 4):
        return x
    if x.ndim == 4 and x.shape[1] in (1, 3, 4):
        return x.transpose(0, 2, 3, 1)
    raise DataError(
        f"{path} has shape {x.shape}: expected images (N, H, W), (N, H, W, C) or (N, C, H, W) "
        "with C = 1, 3 or 4"
    )


def _value_scale(x: np.ndarray, path: str) -> float:
    """The factor mapping the array's values to 0..255; DataError if they do not fit."""
    if x.dtype == np.uint8:
        return 1.0
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DataError(f"{path} has dtype {x.dtype}: expected uint8 or float images")
    if x.size == 0:
        return 1.0
    low, high = float(x.min()), float(x.max())
    if not (math.isfinite(low) and math.isfinite(high)):
        raise DataError(f"{path} contains NaN or infinite values")
    if low < 0 or high > 255:
        raise DataError(
            f"{path} holds values from {low:g} to {high:g}: expected uint8, or float in [0, 1] "
            "or [0, 255] (standardised arrays cannot be turned back into images)"
        )
    return 255.0 if np.issubdtype(x.dtype, np.floating) and high <= 1.0 else 1.0


def to_gray_images(x: np.ndarray, path: str, image_size: int) -> tuple[np.ndarray, int]:
    """(N, size, size) uint8 images from any supported array, and how many were resized."""
    nhwc = _as_nhwc(x, path)
    scale = _value_scale(nhwc, path)
    n, height, width, channels = nhwc.shape
    gray = np.empty((n, height, width), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        chunk = nhwc[start : start + _CHUNK]
        if channels == 1 and chunk.dtype == np.uint8:
            gray[start : start + _CHUNK] = chunk[..., 0]
            continue
        values = chunk[..., :3].astype(np.float32)
        values = values @ _RGB_WEIGHTS if channels >= 3 else values[..., 0]
        gray[start : start + _CHUNK] = np.clip(values * scale + 0.5, 0, 255).astype(np.uint8)
    if (height, width) == (image_size, image_size):
        return gray, 0
    return np.stack([fit_size(image, image_size)[0] for image in gray]), n


def to_labels(y: np.ndarray, path: str, num_classes: int) -> np.ndarray:
    """(N,) int64 class indices from indices or one-hot / score rows; DataError if out of range."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2:
        if y.shape[1] > num_classes:
            raise DataError(
                f"{path} has {y.shape[1]} label columns but there are {num_classes} classes"
            )
        return np.argmax(y, axis=1).astype(np.int64)
    if y.ndim != 1:
        raise DataError(f"{path} has shape {y.shape}: expected labels (N,) or one-hot (N, K)")
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise DataError(f"{path} has dtype {y.dtype}: expected integer class indices")
    labels = y.astype(np.int64)
    for bad, problem in (
        (np.flatnonzero(labels != y), "is not an integer"),
        (
            np.flatnonzero((labels < 0) | (labels >= num_classes)),
            f"is out of range 0..{num_classes - 1}",
        ),
    ):
        if bad.size:
            raise DataError(
                f"{path}: label {y[bad[0]].item()} at index {bad[0]} {problem} "
                f"({bad.size} such labels)"
            )
    return labels


def read_npy(folder: str, class_names: tuple[str, ...], image_size: int) -> RawData:
    """Read the X_*/y_* arrays in ``folder`` (file names matched case-insensitively)."""
    files = find_npy(folder)
    images, labels, tags = [], [], []
    n_resized = 0
    for tag, names in _SPLITS:
        name = next((name for name in names if f"x_{name}.npy" in files), None)
        if name is None:
            if tag == TRAIN:
                raise DataError(f"folder {folder} has no X_train.npy")
            continue
        x_path = files[f"x_{name}.npy"]
        y_path = files.get(f"y_{name}.npy")
        if y_path is None:
            raise DataError(f"{x_path} has no labels file y_{name}.npy beside it")
        x, y = _load(x_path), _load(y_path)
        if len(x) != len(y):
            raise DataError(f"{x_path} holds {len(x)} images but {y_path} holds {len(y)} labels")
        split_images, resized = to_gray_images(x, x_path, image_size)
        images.append(split_images)
        labels.append(to_labels(y, y_path, len(class_names)))
        tags.append(np.full(len(x), tag, dtype=np.int8))
        n_resized += resized
    return RawData(
        images=np.ascontiguousarray(np.concatenate(images)),
        labels=np.concatenate(labels),
        tags=np.concatenate(tags),
        class_names=class_names,
        source="npy",
        n_resized=n_resized,
    )
