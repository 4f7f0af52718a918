"""inception_fer.data: the decode cache, the val split, and the real shared FER2013."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from inception_fer.classes import EMOTIONS
from inception_fer.data import images as images_module
from inception_fer.data import load_fer
from inception_fer.data.splits import stratified_split
from inception_fer.errors import DataError


def write_image(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((48, 48), value, dtype=np.uint8))


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "fer"
    for i in range(4):
        write_image(root / "train" / "happy" / f"Training_{i}.png", 100 + i)
        write_image(root / "train" / "fear" / f"Training_{10 + i}.png", 10 + i)
    write_image(root / "test" / "fear" / "PublicTest_1.png", 50)
    return root


def fail_decode(path: str) -> np.ndarray:
    raise AssertionError(f"decoded {path} although the cache should have been used")


def cache_files(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.npz"))


def test_second_load_uses_cache(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    first = load_fer(dataset, cache_dir=cache)
    assert len(cache_files(cache)) == 1
    assert not list(cache.glob(".*tmp"))
    monkeypatch.setattr(images_module, "decode_image", fail_decode)
    second = load_fer(dataset, cache_dir=cache)
    assert np.array_equal(first.train.images, second.train.images)
    assert np.array_equal(first.val.labels, second.val.labels)
    assert second.class_names == EMOTIONS
    with pytest.raises(AssertionError, match="decoded"):
        load_fer(dataset, cache_dir=cache, use_cache=False)
    with pytest.raises(AssertionError, match="decoded"):  # other options: another cache entry
        load_fer(dataset, cache_dir=cache, image_size=32)


def test_default_cache_dir_from_env(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INCEPTION_FER_CACHE", str(tmp_path / "envcache"))
    load_fer(dataset)
    assert len(cache_files(tmp_path / "envcache")) == 1


def test_changed_file_rebuilds_cache(dataset: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_fer(dataset, cache_dir=cache)
    old_files = cache_files(cache)
    write_image(dataset / "train" / "happy" / "Training_0.png", 200)
    stat = os.stat(dataset / "train" / "happy" / "Training_0.png")
    os.utime(dataset / "train" / "happy" / "Training_0.png", ns=(stat.st_atime_ns, 10**18))
    data = load_fer(dataset, cache_dir=cache)
    assert 200 in data.train.images[:, 5, 5]
    assert len(cache_files(cache)) == 1 and cache_files(cache) != old_files  # stale one removed
    write_image(dataset / "train" / "happy" / "Training_new.png", 201)
    assert 201 in load_fer(dataset, cache_dir=cache).train.images[:, 5, 5]


def test_corrupt_cache_is_rebuilt(dataset: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = load_fer(dataset, cache_dir=cache)
    (entry,) = cache_files(cache)
    entry.write_bytes(entry.read_bytes()[:1000])
    second = load_fer(dataset, cache_dir=cache)
    assert np.array_equal(first.train.images, second.train.images)
    assert entry.stat().st_size > 1000


def test_csv_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv = tmp_path / "fer2013.csv"
    row = " ".join(["9"] * 2304)
    csv.write_text(f"emotion,pixels,Usage\n0,{row},Training\n1,{row},PublicTest\n")
    load_fer(csv, cache_dir=tmp_path / "cache")
    from inception_fer.data import loader

    monkeypatch.setattr(loader, "read_csv", fail_decode)
    assert load_fer(csv, cache_dir=tmp_path / "cache").train.labels.tolist() == [0]


def test_val_fraction_needs_no_decode(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    load_fer(dataset, cache_dir=cache)
    monkeypatch.setattr(images_module, "decode_image", fail_decode)
    with pytest.warns(UserWarning, match="1 images of the source's own val split are not used"):
        data = load_fer(dataset, cache_dir=cache, val_fraction=0.25)
    assert len(data.train) == 6 and len(data.val) == 2
    assert sorted(data.val.labels.tolist()) == [EMOTIONS.index("fear"), EMOTIONS.index("happy")]


def test_stratified_split_deterministic_and_stratified() -> None:
    labels = np.repeat(np.arange(4), [100, 50, 20, 3])
    train, val = stratified_split(labels, 0.2, seed=7)
    assert np.bincount(labels[val], minlength=4).tolist() == [20, 10, 4, 1]
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(labels)
    again_train, again_val = stratified_split(labels, 0.2, seed=7)
    assert np.array_equal(val, again_val) and np.array_equal(train, again_train)
    _, other_val = stratified_split(labels, 0.2, seed=8)
    assert not np.array_equal(val, other_val)
    _, tiny = stratified_split(np.array([0, 1, 1]), 0.5, seed=0)
    assert labels[tiny].tolist() == [0]  # class 0's only image stays in train


def test_no_val_source_defaults_to_tenth(tmp_path: Path) -> None:
    for i in range(20):
        write_image(tmp_path / "data" / "sad" / f"{i}.png", i)
    first = load_fer(tmp_path / "data", seed=3, cache_dir=tmp_path / "c")
    second = load_fer(tmp_path / "data", seed=3, cache_dir=tmp_path / "c")
    other = load_fer(tmp_path / "data", seed=4, cache_dir=tmp_path / "c")
    assert len(first.val) == 2 and len(first.train) == 18
    assert np.array_equal(first.val.images, second.val.images)
    assert not np.array_equal(first.val.images, other.val.images)


def test_too_few_images_for_val(tmp_path: Path) -> None:
    write_image(tmp_path / "data" / "sad" / "a.png", 1)
    with pytest.raises(DataError, match="leaves no validation images"):
        load_fer(tmp_path / "data", cache_dir=tmp_path / "c")


def test_real_fer2013(fer2013_dir: Path, tmp_path: Path) -> None:
    data = load_fer(fer2013_dir, cache_dir=tmp_path)
    assert data.source == "folders" and data.class_names == EMOTIONS
    assert (len(data.train), len(data.val), data.test) == (28709, 3589, None)
    counts = {  # README: train / test per class
        "angry": (3995, 467),
        "disgust": (436, 56),
        "fear": (4097, 496),
        "happy": (7215, 895),
        "neutral": (4965, 607),
        "sad": (4830, 653),
        "surprise": (3171, 415),
    }
    train_counts = data.train.class_counts(7)
    val_counts = data.val.class_counts(7)
    for name, (n_train, n_val) in counts.items():
        assert (train_counts[EMOTIONS.index(name)], val_counts[EMOTIONS.index(name)]) == (
            n_train,
            n_val,
        )
    assert data.train.images.shape == (28709, 48, 48) and data.bad_files == ()
    cached = load_fer(fer2013_dir, cache_dir=tmp_path)
    assert np.array_equal(cached.val.images, data.val.images)
