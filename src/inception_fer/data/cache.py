"""A cache of decoded sources as uncompressed ``.npz`` files, keyed by what the source holds.

File name: ``<source>-<config digest>-<content digest>.npz``. The config digest covers the format
version, source path and load options; the content digest covers every source file's relative
path, size and mtime. A new content digest replaces the older files of the same config.
"""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from .dataset import RawData

CACHE_VERSION = 1
"""Bump when the decoding or the file layout changes, so old cache files are not used."""


def default_cache_dir() -> Path:
    """``$INCEPTION_FER_CACHE`` or ``~/.cache/inception-fer``."""
    configured = os.environ.get("INCEPTION_FER_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "inception-fer"


def digest(parts: Iterable[str]) -> str:
    """A hex SHA-256 of the parts, one per line."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode("utf-8", "surrogateescape"))
        hasher.update(b"\n")
    return hasher.hexdigest()


def cache_file(cache_dir: Path, source: str, config_key: str, content_key: str) -> Path:
    """Where the cache of one source version lives."""
    return cache_dir / f"{source}-{config_key[:16]}-{content_key[:16]}.npz"


def load_cached(path: Path) -> RawData | None:
    """The cached RawData, or None if the file is absent, corrupt or from another version."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            if int(archive["version"]) != CACHE_VERSION:
                return None
            raw = RawData(
                images=archive["images"],
                labels=archive["labels"],
                tags=archive["tags"],
                class_names=tuple(str(name) for name in archive["class_names"]),
                source=str(archive["source"]),
                bad_files=tuple(str(name) for name in archive["bad_files"]),
                n_resized=int(archive["n_resized"]),
            )
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    consistent = (
        raw.images.ndim == 3
        and raw.images.dtype == np.uint8
        and raw.labels.shape == raw.tags.shape == raw.images.shape[:1]
    )
    return raw if consistent else None


def save_cached(path: Path, raw: RawData) -> None:
    """Write atomically and remove older versions of the same config; a cache that cannot be
    written only warns."""
    try:
        with atomic_path(path) as temp, open(temp, "wb") as handle:
            np.savez(
                handle,
                version=np.int64(CACHE_VERSION),
                images=raw.images,
                labels=raw.labels,
                tags=raw.tags,
                class_names=np.array(raw.class_names, dtype=str),
                source=np.array(raw.source),
                bad_files=np.array(raw.bad_files, dtype=str),
                n_resized=np.int64(raw.n_resized),
            )
        stem = path.name.rsplit("-", 1)[0]
        for stale in path.parent.glob(f"{stem}-*.npz"):
            if stale != path:
                stale.unlink(missing_ok=True)
    except OSError as error:
        warnings.warn(f"could not write the data cache {path}: {error}", stacklevel=3)
