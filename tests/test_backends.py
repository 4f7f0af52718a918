"""Inference backends: EmotionRecognizer on ONNX Runtime finds the same faces and gives the same
probabilities as on PyTorch, with every TTA mode, from a checkpoint or an exported .onnx file."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from torch import nn

from inception_fer.errors import DataError, InceptionFerError
from inception_fer.evaluation import predict_probs
from inception_fer.export import export_onnx, onnx_model_bytes
from inception_fer.faces import FaceDetector, create_detector
from inception_fer.inference import EmotionRecognizer
from inception_fer.inference.backends import OnnxBackend, TorchBackend, create_backend
from inception_fer.inference.recognizer import resolve_checkpoint
from inception_fer.pretrained import DEFAULT_MODEL, list_pretrained
from inception_fer.training.checkpoint import Checkpoint

skimage_data = pytest.importorskip(
    "skimage.data", reason="scikit-image (a test dependency) is absent"
)
pytestmark = pytest.mark.skipif(
    DEFAULT_MODEL not in list_pretrained(), reason="the default model's weights are not shipped"
)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut (RGB, 512x512, one smiling face)."""
    image: np.ndarray = skimage_data.astronaut()
    return image


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return create_detector("mtcnn")


@pytest.fixture(scope="module")
def checkpoint() -> Checkpoint:
    return resolve_checkpoint("default")


def test_torch_backend_folds_batchnorm_and_leaves_the_checkpoint_as_it_was(
    checkpoint: Checkpoint,
) -> None:
    backend = TorchBackend(checkpoint)
    assert not any(isinstance(layer, nn.BatchNorm2d) for layer in backend.model.modules())
    assert any(isinstance(layer, nn.BatchNorm2d) for layer in checkpoint.model.modules())
    crops = np.random.default_rng(0).integers(0, 256, size=(5, 48, 48), dtype=np.uint8)
    meta = checkpoint.meta
    expected = predict_probs(checkpoint.model, crops, mean=meta.mean, std=meta.std, tta="flip")
    np.testing.assert_allclose(backend.predict_probs(crops, tta="flip"), expected, atol=1e-5)


@pytest.mark.parametrize("tta", ["none", "flip", "tencrop", "shift"])
def test_onnx_recognizer_matches_torch_on_a_photo(
    tta: str, astronaut: np.ndarray, detector: FaceDetector, checkpoint: Checkpoint
) -> None:
    on_torch = EmotionRecognizer(checkpoint, detector, tta=tta)
    on_onnx = EmotionRecognizer(checkpoint, detector, tta=tta, backend="onnx")
    assert (on_torch.backend, on_onnx.backend) == ("torch", "onnx")
    assert isinstance(on_onnx.engine, OnnxBackend) and isinstance(on_torch.engine, TorchBackend)
    (expected,) = on_torch.predict(astronaut)
    (face,) = on_onnx.predict(astronaut)
    assert face.box == expected.box and face.landmarks == expected.landmarks
    assert list(face.probabilities) == list(expected.probabilities)
    assert face.probabilities == pytest.approx(expected.probabilities, abs=1e-4)
    assert face.emotion == expected.emotion == "happy"


def test_tta_modes_give_different_probabilities(checkpoint: Checkpoint) -> None:
    backend = create_backend("onnx", checkpoint, threads=1)
    crops = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    by_mode = {tta: backend.predict_probs(crops, tta=tta, batch_size=2) for tta in ("none", "flip")}
    assert not np.allclose(by_mode["none"], by_mode["flip"], atol=1e-3)
    torch_backend = create_backend("torch", checkpoint)
    np.testing.assert_allclose(
        by_mode["flip"], torch_backend.predict_probs(crops, tta="flip", batch_size=2), atol=1e-4
    )


def test_a_batch_spread_over_threads_gives_the_single_session_probabilities(
    checkpoint: Checkpoint,
) -> None:
    """Shares of uneven size (101 faces: 34 + 33 + 34, each in chunks of 32) come back in order, and
    callers on several threads at once (the server) each get their own faces' results."""
    onnx = onnx_model_bytes(checkpoint)
    one, three = OnnxBackend(onnx, threads=1), OnnxBackend(onnx, threads=3)
    crops = np.random.default_rng(1).integers(0, 256, (101, 48, 48), dtype=np.uint8)
    expected = one.predict_probs(crops, tta="flip", batch_size=101)
    np.testing.assert_allclose(
        three.predict_probs(crops, tta="flip", batch_size=101), expected, atol=1e-6
    )
    assert len(three._workers) == 3  # the parallel path ran
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(three.predict_probs, crops[i:], "none", 64) for i in range(4)]
        for i, future in enumerate(futures):
            np.testing.assert_allclose(
                future.result(), one.predict_probs(crops[i:], batch_size=64), atol=1e-6
            )


def test_an_exported_onnx_file_runs_without_its_checkpoint(
    tmp_path: Path, astronaut: np.ndarray, detector: FaceDetector, checkpoint: Checkpoint
) -> None:
    path = export_onnx(checkpoint, tmp_path / "model.onnx").path
    recognizer = EmotionRecognizer(path, detector, backend="onnx", tta="flip")
    assert recognizer.classes == tuple(checkpoint.meta.class_names)
    assert recognizer.input_size == 48 and recognizer.meta.model_name == checkpoint.meta.model_name
    assert recognizer.name == checkpoint.meta.model_name  # a file: the network's name
    assert str(recognizer.device) == "cpu"
    (face,) = recognizer.predict(astronaut)
    (expected,) = EmotionRecognizer(checkpoint, detector, tta="flip").predict(astronaut)
    assert face.probabilities == pytest.approx(expected.probabilities, abs=1e-4)
    with pytest.raises(InceptionFerError, match=r"runs an \.onnx file: it has no checkpoint"):
        _ = recognizer.checkpoint
    with pytest.raises(InceptionFerError, match="the onnx backend runs no PyTorch network"):
        _ = recognizer.model
    with pytest.raises(InceptionFerError, match=r"an \.onnx file runs with backend 'onnx'"):
        EmotionRecognizer(path, detector)


def test_onnx_backend_checks_crops_like_torch(checkpoint: Checkpoint) -> None:
    backend = create_backend("onnx", checkpoint)
    assert backend.predict_probs(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)
    with pytest.raises(DataError, match=r"must be shaped \(N, 48, 48\), got shape \(2, 64, 64\)"):
        backend.predict_probs(np.zeros((2, 64, 64), np.uint8))
    with pytest.raises(DataError, match="must be a uint8 array, got float32"):
        backend.predict_probs(np.zeros((2, 48, 48), np.float32))
    with pytest.raises(InceptionFerError, match="unknown TTA mode 'x'"):
        backend.predict_probs(np.zeros((2, 48, 48), np.uint8), tta="x")
    for name in ("onnx", "torch"):
        with pytest.raises(InceptionFerError, match="threads must be at least 1, got 0"):
            create_backend(name, checkpoint, threads=0)


def test_unknown_backend_or_device_is_a_clear_error(
    detector: FaceDetector, checkpoint: Checkpoint
) -> None:
    with pytest.raises(InceptionFerError, match="unknown backend 'tflite'; valid backends: torch"):
        EmotionRecognizer(checkpoint, detector, backend="tflite")
    with pytest.raises(InceptionFerError, match="backend 'onnx' runs on the CPU only"):
        EmotionRecognizer(checkpoint, detector, backend="onnx", device="cuda")
