"""``load_fer``: find which form a FER2013-style dataset is in, decode it once, cache, split."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from ..errors import DataError
from .cache import CACHE_VERSION, cache_file, default_cache_dir, digest, load_cached, save_cached
from .classes_map import ClassMap
from .csv_source import read_csv
from .dataset import FerData, RawData
from .folders import list_folders, read_folders
from .npy_source import find_npy, read_npy
from .splits import make_splits

CSV_NAME = "fer2013.csv"


def detect_source(path: Path) -> tuple[str, str]:
    """('csv', file) | ('npy', folder) | ('folders', folder) for a dataset file or folder."""
    if not path.exists():
        raise DataError(f"dataset path {path} does not exist")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".csv":
            return "csv", str(path)
        if suffix == ".npy":
            return "npy", str(path.parent)
        raise DataError(f"{path} is not a dataset: expected a .csv file, a .npy file or a folder")
    with os.scandir(path) as entries:
        files = {entry.name.lower(): entry.path for entry in entries if entry.is_file()}
    if CSV_NAME in files:
        return "csv", files[CSV_NAME]
    if "x_train.npy" in find_npy(str(path)):
        return "npy", str(path)
    if any(entry.is_dir() and not entry.name.startswith((".", "__")) for entry in path.iterdir()):
        return "folders", str(path)
    csvs = [name for name in files if name.endswith(".csv")]
    if len(csvs) == 1:
        return "csv", files[csvs[0]]
    raise DataError(
        f"{path} holds no dataset: expected {CSV_NAME}, X_train.npy with y_train.npy, "
        "train/<emotion>/ and test/<emotion>/ image folders, or <emotion>/ image folders"
    )


def _check_options(image_size: int, val_fraction: float | None) -> None:
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise DataError(f"image_size must be a positive integer, got {image_size!r}")
    if val_fraction is not None and not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")


def _read_cached(
    kind: str,
    location: str,
    classes: ClassMap,
    image_size: int,
    skip_bad: bool,
    cache_dir: Path | None,
    use_cache: bool,
) -> RawData:
    """Decode a csv or folder source, through the cache when ``use_cache``."""
    listing = list_folders(location, classes) if kind == "folders" else None

    def decode() -> RawData:
        if listing is not None:
            return read_folders(listing, classes, image_size, skip_bad)
        return read_csv(location, classes.names, image_size, skip_bad)

    if not use_cache:
        return decode()
    if listing is not None:
        signature = listing.signature
    else:
        stat = os.stat(location)
        signature = [f"{stat.st_size}\t{stat.st_mtime_ns}"]
    config = [str(CACHE_VERSION), kind, os.path.abspath(location), str(image_size), str(skip_bad)]
    target = cache_file(
        cache_dir if cache_dir is not None else default_cache_dir(),
        kind,
        digest([*config, *classes.names]),
        digest(signature),
    )
    raw = load_cached(target)
    if raw is None:
        raw = decode()
        save_cached(target, raw)
    return raw


def load_fer(
    path: str | os.PathLike[str],
    *,
    image_size: int = 48,
    val_fraction: float | None = None,
    seed: int = 0,
    classes: Sequence[str] | None = None,
    skip_bad: bool = False,
    cache_dir: Path | None = None,
    use_cache: bool = True,
) -> FerData:
    """Load FER2013 (or any emotion dataset in the same forms) from one path.

    ``path``: ``fer2013.csv`` or a folder holding it; a folder with ``X_train.npy``/``y_train.npy``
    (optionally ``X_val``/``X_test``); Kaggle folders ``train/<emotion>/``, ``test/<emotion>/``; or
    one folder of ``<emotion>/`` sub-folders (all train). Class names are ``EMOTIONS`` unless
    ``classes`` lists others (folders are then matched to them case-insensitively, synonyms
    allowed; CSV and npy labels index them).

    Val is the source's own (PublicTest rows or files, ``X_val``, a ``val/`` folder). Where there is
    none, or when ``val_fraction`` is given, val is that stratified fraction of train, drawn with
    ``seed`` (default 0.1). Test is PrivateTest, ``X_test`` or ``test/`` beside ``val/``; else None.

    Images become (size, size) uint8 gray (resized with INTER_AREA, with one warning). Decoded
    csv and folder sources are cached under ``cache_dir`` (default ``$INCEPTION_FER_CACHE`` or
    ``~/.cache/inception-fer``) and re-decoded when a file changes. ``skip_bad`` skips
    unreadable images (and malformed CSV rows) and lists them in ``bad_files``.
    """
    _check_options(image_size, val_fraction)
    class_map = ClassMap.create(classes)
    kind, location = detect_source(Path(path).expanduser())
    if kind == "npy":
        raw = read_npy(location, class_map.names, image_size)
    else:
        raw = _read_cached(kind, location, class_map, image_size, skip_bad, cache_dir, use_cache)
    if raw.n_resized:
        warnings.warn(
            f"resized {raw.n_resized} of {len(raw.labels)} images from {location} to "
            f"{image_size}x{image_size} (INTER_AREA)",
            stacklevel=2,
        )
    return make_splits(raw, val_fraction, seed)
