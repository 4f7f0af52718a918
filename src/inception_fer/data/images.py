"""Decode image files to square grayscale uint8 arrays with OpenCV, in parallel threads."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import DataError

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}
)
"""File extensions read as images (compared lower-case); other files are ignored."""

_CHUNK = 256


def is_image_name(name: str) -> bool:
    """Whether a directory entry name is a visible file with an image extension."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _to_gray_uint8(image: np.ndarray) -> np.ndarray:
    """Convert an IMREAD_UNCHANGED result (any depth, 1/3/4 channels) to 2-D uint8."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        scaled = image.astype(np.float32)
        if scaled.size and float(scaled.max()) <= 1.0:
            scaled *= 255.0
        image = np.clip(scaled, 0, 255).round().astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    return image


def decode_image(path: str) -> np.ndarray:
    """Decode one file to a 2-D uint8 gray image; DataError if it is not a readable image."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise DataError(f"cannot read image {path}: {error.strerror or error}") from None
    if data.size == 0:
        raise DataError(f"image file {path} is empty")
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    if image is None:
        unchanged = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        if unchanged is None or unchanged.ndim not in (2, 3):
            raise DataError(f"image file {path} is corrupt or truncated (OpenCV cannot decode it)")
        image = _to_gray_uint8(unchanged)
    return image


def fit_size(image: np.ndarray, size: int) -> tuple[np.ndarray, bool]:
    """Resize to size x size with INTER_AREA if needed; returns the image and whether it changed."""
    if image.shape == (size, size):
        return image, False
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA), True


@dataclass
class DecodeResult:
    """Images decoded from a list of files; ``ok[i]`` is False for a skipped bad file."""

    images: np.ndarray
    ok: np.ndarray
    bad_files: list[str]
    n_resized: int


def default_workers() -> int:
    """Threads to decode with: the CPUs this process may use, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


def decode_files(
    paths: Sequence[str], image_size: int, skip_bad: bool, workers: int | None = None
) -> DecodeResult:
    """Decode ``paths`` into one (N, size, size) uint8 array using a thread pool.

    A bad file raises DataError naming it, or with ``skip_bad`` is recorded and left out of ``ok``.
    """
    images = np.zeros((len(paths), image_size, image_size), dtype=np.uint8)
    ok = np.ones(len(paths), dtype=bool)

    def run(start: int) -> tuple[list[tuple[int, str]], int]:
        errors: list[tuple[int, str]] = []
        resized = 0
        for i in range(start, min(start + _CHUNK, len(paths))):
            try:
                image = decode_image(paths[i])
            except DataError as error:
                errors.append((i, str(error)))
                continue
            images[i], changed = fit_size(image, image_size)
            resized += changed
        return errors, resized

    starts = range(0, len(paths), _CHUNK)
    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        results = list(pool.map(run, starts))
    errors = [error for chunk_errors, _ in results for error in chunk_errors]
    if errors and not skip_bad:
        more = f"; {len(errors) - 1} more bad files" if len(errors) > 1 else ""
        raise DataError(f"{errors[0][1]}{more}; pass skip_bad=True to skip bad files")
    for index, _ in errors:
        ok[index] = False
    return DecodeResult(
        images=images,
        ok=ok,
        bad_files=[paths[index] for index, _ in errors],
        n_resized=sum(resized for _, resized in results),
    )
