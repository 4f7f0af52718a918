"""Image-folder datasets: the Kaggle FER2013 layout (train/ and test/) or one folder of classes.

Layouts, detected from the root:

* ``root/train/<class>/*`` plus optional ``root/test/<class>/*``: Kaggle FER2013. Files in test/
  named ``PrivateTest_*`` form the test split; the others (``PublicTest_*`` or no prefix) are val.
  If a ``root/val/`` (or ``valid/``, ``validation/``) folder exists, it is val and all of test/
  is test.
* ``root/<class>/*``: every image is train (val is then split off by ``load_fer``).

Hidden files and folders and files without an image extension are ignored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError
from .classes_map import ClassMap
from .dataset import TEST, TRAIN, VAL, RawData
from .images import decode_files, is_image_name

_TRAIN_DIRS = frozenset({"train", "training"})
_VAL_DIRS = frozenset({"val", "valid", "validation"})
_TEST_DIRS = frozenset({"test", "testing"})


@dataclass
class FolderListing:
    """Every image file of a folder dataset, with its label and split code, in a fixed order."""

    root: str
    paths: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    tags: list[int] = field(default_factory=list)
    signature: list[str] = field(default_factory=list)
    """One 'relative path, size, mtime' line per file: what the cache key hashes."""


def _subdirs(path: str) -> list[os.DirEntry[str]]:
    """Visible sub-folders of ``path``, sorted by name."""
    with os.scandir(path) as entries:
        found = [
            entry for entry in entries if entry.is_dir() and not entry.name.startswith((".", "__"))
        ]
    return sorted(found, key=lambda entry: entry.name)


def _add_class_folders(
    listing: FolderListing, folder: str, classes: ClassMap, tag: int, by_prefix: bool = False
) -> None:
    """Add the images of every class sub-folder of ``folder`` with split code ``tag`` (TEST
    instead for ``PrivateTest_*`` files when ``by_prefix``); DataError if it holds no images."""
    count = 0
    for class_dir in _subdirs(folder):
        label = classes.index(class_dir.name, class_dir.path)
        with os.scandir(class_dir.path) as entries:
            files = sorted(
                (entry for entry in entries if is_image_name(entry.name) and entry.is_file()),
                key=lambda entry: entry.name,
            )
        for entry in files:
            private = by_prefix and entry.name.lower().startswith("privatetest")
            stat = entry.stat()
            listing.paths.append(entry.path)
            listing.labels.append(label)
            listing.tags.append(TEST if private else tag)
            relative = os.path.relpath(entry.path, listing.root)
            listing.signature.append(f"{relative}\t{stat.st_size}\t{stat.st_mtime_ns}")
        count += len(files)
    if count == 0:
        raise DataError(
            f"folder {folder} has no images: expected <class>/ sub-folders of image files "
            f"(.jpg, .png, ...) such as {folder}{os.sep}happy{os.sep}0001.jpg"
        )


def list_folders(root: str, classes: ClassMap) -> FolderListing:
    """List a folder dataset (either layout) without decoding anything."""
    listing = FolderListing(root=root)
    subdirs = {entry.name.lower(): entry.path for entry in _subdirs(root)}
    train = next((subdirs[name] for name in sorted(_TRAIN_DIRS) if name in subdirs), None)
    if train is None:
        if not subdirs:
            raise DataError(f"folder {root} has no class sub-folders of images")
        _add_class_folders(listing, root, classes, TRAIN)
        return listing
    _add_class_folders(listing, train, classes, TRAIN)
    val = next((subdirs[name] for name in sorted(_VAL_DIRS) if name in subdirs), None)
    test = next((subdirs[name] for name in sorted(_TEST_DIRS) if name in subdirs), None)
    if val is not None:
        _add_class_folders(listing, val, classes, VAL)
    if test is not None:
        if val is not None:
            _add_class_folders(listing, test, classes, TEST)
        else:
            _add_class_folders(listing, test, classes, VAL, by_prefix=True)
    return listing


def read_folders(
    listing: FolderListing, classes: ClassMap, image_size: int, skip_bad: bool
) -> RawData:
    """Decode the listed images into a RawData (bad files skipped only with ``skip_bad``)."""
    decoded = decode_files(listing.paths, image_size, skip_bad)
    ok = decoded.ok
    images = decoded.images if ok.all() else np.ascontiguousarray(decoded.images[ok])
    return RawData(
        images=images,
        labels=np.asarray(listing.labels, dtype=np.int64)[ok],
        tags=np.asarray(listing.tags, dtype=np.int8)[ok],
        class_names=classes.names,
        source="folders",
        bad_files=tuple(decoded.bad_files),
        n_resized=decoded.n_resized,
    )
