"""Shared fixtures: small synthetic FER-like data, and the shared FER2013 when it is present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
FER2013_DIR = SHARED_DATA / "fer2013"
PHOTOS_DIR = SHARED_DATA / "photos"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Keep every test's dataset cache out of the user's home."""
    monkeypatch.setenv("INCEPTION_FER_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def fer2013_dir() -> Path:
    """The shared FER2013 image folders; the test is skipped where they are absent."""
    if not (FER2013_DIR / "train").is_dir():
        pytest.skip(
            f"shared FER2013 not found at {FER2013_DIR} (CI and developer machines have it)"
        )
    return FER2013_DIR


def make_faces(n: int, num_classes: int = 7, size: int = 48, seed: int = 0):
    """Learnable synthetic 'faces': class k is noise plus a bright block at a class-specific
    place."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    images = rng.integers(0, 80, size=(n, size, size), dtype=np.uint8)
    cell = size // 4
    for i, k in enumerate(labels):
        row, col = divmod(int(k) % 16, 4)
        images[i, row * cell : (row + 1) * cell, col * cell : (col + 1) * cell] += 150
    return images, labels.astype(np.int64)


@pytest.fixture
def npy_dataset(tmp_path: Path) -> Path:
    """A tutorial-style .npy dataset folder (X_train/y_train/X_test/y_test, one-hot test labels)."""
    folder = tmp_path / "npy"
    folder.mkdir()
    x_train, y_train = make_faces(84, seed=1)
    x_test, y_test = make_faces(28, seed=2)
    np.save(folder / "X_train.npy", x_train)
    np.save(folder / "y_train.npy", y_train)
    np.save(folder / "X_val.npy", x_test)
    np.save(folder / "y_val.npy", np.eye(7, dtype=np.float32)[y_test])
    return folder


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained 7-emotion checkpoint (mini_xception): fast, for structure tests."""
    import torch

    from inception_fer.classes import EMOTIONS
    from inception_fer.training.checkpoint import CheckpointMeta, save_checkpoint

    meta = CheckpointMeta("mini_xception", {"in_chans": 1}, list(EMOTIONS), mean=0.5, std=0.25)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_checkpoint(path, meta.build_model(), meta)
