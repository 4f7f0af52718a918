"""Face detection: the interface, the registry's errors, and the default detector on real photos."""

from __future__ import annotations

import importlib.util
import pickle
import shutil
import sys
from pathlib import Path

import cv2
import lz4.frame
import matplotlib
import numpy as np
import pytest

from conftest import PHOTOS_DIR, REPO_ROOT
from inception_fer.errors import CheckpointError, DataError, InceptionFerError
from inception_fer.faces import Face, FaceDetector, create_detector, list_detectors
from inception_fer.faces.mtcnn_weights import read_weights, weights_dir

SHARED_COUNTS = {
    "multiface.jpg": 6,
    "angelina_jolie.jpg": 1,
    "kate_siegel.jpg": 1,
    "paul_rudd.jpg": 1,
}


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return create_detector()


def _package_photo(name: str) -> np.ndarray:
    """A photo that scikit-image or matplotlib ships, as BGR."""
    if name == "grace_hopper":
        path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        image = cv2.imread(str(path))
        assert image is not None, path
        return image
    data = pytest.importorskip("skimage.data", reason="scikit-image (a test dependency) is absent")
    rgb = getattr(data, name)()
    return cv2.cvtColor(rgb, cv2.COLOR_GRAY2BGR if rgb.ndim == 2 else cv2.COLOR_RGB2BGR)


def _assert_inside(faces: list[Face], image: np.ndarray) -> None:
    height, width = image.shape[:2]
    for face in faces:
        assert face.x >= 0 and face.y >= 0 and face.w > 0 and face.h > 0
        assert face.x + face.w <= width + 1e-6 and face.y + face.h <= height + 1e-6


@pytest.mark.parametrize("name", sorted(SHARED_COUNTS))
def test_shared_photos_have_the_right_face_count(detector: FaceDetector, name: str):
    if not PHOTOS_DIR.is_dir():
        pytest.skip(
            f"shared photos not found at {PHOTOS_DIR} (CI and developer machines have them)"
        )
    image = cv2.imread(str(PHOTOS_DIR / name))
    assert image is not None
    faces = detector.detect(image)
    assert len(faces) == SHARED_COUNTS[name]
    _assert_inside(faces, image)
    scores = [face.score for face in faces]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("name", ["astronaut", "camera", "grace_hopper"])
def test_package_photos_have_one_face(detector: FaceDetector, name: str):
    image = _package_photo(name)
    faces = detector.detect(image)
    assert len(faces) == 1
    _assert_inside(faces, image)


def test_mirrored_view_finds_the_mirrored_face(detector: FaceDetector):
    image = _package_photo("astronaut")
    (face,) = detector.detect(image)
    (mirrored,) = detector.detect(image[:, ::-1])  # a negative-stride view, not a copy
    assert mirrored.center[0] == pytest.approx(image.shape[1] - face.center[0], abs=6)
    assert mirrored.center[1] == pytest.approx(face.center[1], abs=6)


def test_astronaut_face_box_and_landmarks_are_on_her_face(detector: FaceDetector):
    (face,) = detector.detect(_package_photo("astronaut"))
    cx, cy = face.center  # her face spans about x 180-265, y 75-170; eyes at y 100
    assert 205 < cx < 245 and 100 < cy < 140
    assert 60 < face.w < 120 and 70 < face.h < 140
    assert face.landmarks is not None and face.landmarks.shape == (5, 2)
    right_eye, left_eye, nose, mouth_right, mouth_left = face.landmarks
    assert np.allclose(right_eye, (204, 101), atol=10) and np.allclose(
        left_eye, (247, 102), atol=10
    )
    assert right_eye[0] < nose[0] < left_eye[0] and mouth_right[0] < mouth_left[0]
    assert max(right_eye[1], left_eye[1]) < nose[1] < min(mouth_right[1], mouth_left[1])


def test_big_image_boxes_map_back_to_its_pixels():
    image = _package_photo("astronaut")
    big = cv2.resize(image, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    detector = create_detector("mtcnn", max_side=512)  # detects on the big image shrunk 3x
    (small_face,) = detector.detect(image)
    (big_face,) = detector.detect(big)
    small_box = np.array([small_face.x, small_face.y, small_face.w, small_face.h])
    big_box = np.array([big_face.x, big_face.y, big_face.w, big_face.h])
    assert np.allclose(big_box, 3 * small_box, atol=0.05 * 3 * small_face.w)
    assert small_face.landmarks is not None and big_face.landmarks is not None
    assert np.allclose(big_face.landmarks, 3 * small_face.landmarks, atol=0.05 * 3 * small_face.w)


class _FixedDetector(FaceDetector):
    """Reports fixed faces in the downscaled image's pixels and remembers that image's shape."""

    def __init__(self, faces: list[Face], max_side: int) -> None:
        super().__init__(max_side=max_side)
        self.faces = faces
        self.seen: tuple[int, ...] = ()

    def _detect(self, image_bgr: np.ndarray) -> list[Face]:
        self.seen = image_bgr.shape
        return self.faces


def test_base_detector_downscales_maps_back_clips_and_sorts():
    landmarks = np.array([[20, 30]] * 5, dtype=np.float32)
    faces = [
        Face(10, 20, 30, 40, score=0.5, landmarks=landmarks),
        Face(240, 100, 50, 50, score=0.9),  # sticks out of the 250x125 detection image
    ]
    stub = _FixedDetector(faces, max_side=250)
    found = stub.detect(np.zeros((500, 1000, 3), dtype=np.uint8))
    assert stub.seen == (125, 250, 3)
    assert [face.score for face in found] == [0.9, 0.5]
    clipped, mapped = found
    assert (mapped.x, mapped.y, mapped.w, mapped.h) == (40, 80, 120, 160)
    assert mapped.landmarks is not None and np.allclose(mapped.landmarks, [[80, 120]] * 5)
    assert (clipped.x, clipped.y, clipped.w, clipped.h) == (960, 400, 40, 100)


def test_small_images_are_not_upscaled():
    stub = _FixedDetector([], max_side=640)
    stub.detect(np.zeros((300, 200, 3), dtype=np.uint8))
    assert stub.seen == (300, 200, 3)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((480, 640, 3), dtype=np.uint8),
        np.full((480, 640, 3), 128, dtype=np.uint8),
        np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8),
        np.zeros((1, 1, 3), dtype=np.uint8),
        np.zeros((11, 300, 3), dtype=np.uint8),
    ],
    ids=["black", "gray", "noise", "1x1", "thin"],
)
def test_no_faces_where_there_are_none(detector: FaceDetector, image: np.ndarray):
    assert detector.detect(image) == []


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((10, 10), dtype=np.uint8),
        np.zeros((10, 10, 3), dtype=np.float32),
        np.zeros((0, 5, 3), dtype=np.uint8),
    ],
    ids=["gray", "float", "empty"],
)
def test_wrong_image_arrays_are_data_errors(detector: FaceDetector, image: np.ndarray):
    with pytest.raises(DataError, match="face detection needs"):
        detector.detect(image)


def test_registry_lists_detectors_and_names_them_on_a_typo():
    assert list_detectors() == ["haar", "mtcnn", "yunet"]
    with pytest.raises(
        InceptionFerError,
        match=r"unknown face detector 'mtcn'; valid detectors: haar, mtcnn, yunet",
    ):
        create_detector("mtcn")
    with pytest.raises(InceptionFerError, match=r"bad option for face detector 'mtcnn'.*min_face"):
        create_detector("mtcnn", min_face=10)


def test_yunet_needs_a_model_file(tmp_path: Path):
    with pytest.raises(InceptionFerError, match="needs model_path="):
        create_detector("yunet")
    with pytest.raises(InceptionFerError, match="does not exist"):
        create_detector("yunet", model_path=tmp_path / "yunet.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    with pytest.raises(CheckpointError, match="cannot load YuNet model"):
        create_detector("yunet", model_path=broken)


def test_haar_finds_the_astronaut():
    image = _package_photo("astronaut")
    (face,) = create_detector("haar").detect(image)
    assert 205 < face.center[0] < 245 and 100 < face.center[1] < 140
    assert face.landmarks is None


def test_mtcnn_weights_from_a_folder_and_a_clear_error_when_files_are_missing(tmp_path: Path):
    for name in ("pnet.lz4", "rnet.lz4", "onet.lz4"):
        shutil.copy(weights_dir() / name, tmp_path / name)
    faces = create_detector("mtcnn", weights_dir=tmp_path).detect(_package_photo("astronaut"))
    assert len(faces) == 1
    (tmp_path / "rnet.lz4").unlink()
    with pytest.raises(InceptionFerError, match=r"lacks rnet\.lz4"):
        create_detector("mtcnn", weights_dir=tmp_path)


def test_weight_reader_matches_joblib():
    joblib = pytest.importorskip("joblib")
    path = weights_dir() / "rnet.lz4"
    ours, theirs = read_weights(path), joblib.load(path)
    assert len(ours) == len(theirs) == 16
    assert all(
        a.dtype == np.float32 and np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True)
    )


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


def test_weight_reader_never_runs_code_from_the_file(tmp_path: Path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "pnet.lz4"
    evil.write_bytes(lz4.frame.compress(pickle.dumps([_Exploit(marker)], protocol=4)))
    with pytest.raises(CheckpointError, match="refusing to load pathlib"):
        read_weights(evil)
    assert not marker.exists()
    garbage = tmp_path / "onet.lz4"
    garbage.write_bytes(b"not lz4")
    with pytest.raises(CheckpointError, match="cannot read MTCNN weights"):
        read_weights(garbage)


def test_benchmark_prints_counts_and_times(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    pytest.importorskip("skimage.data", reason="scikit-image (a test dependency) is absent")
    spec = importlib.util.spec_from_file_location(
        "face_bench", REPO_ROOT / "benchmarks" / "face_detection.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["face_bench"] = bench
    spec.loader.exec_module(bench)
    assert bench.main(["--photos", str(tmp_path), "--repeats", "1", "--detector", "mtcnn"]) == 0
    out = capsys.readouterr().out
    assert "mtcnn     astronaut" in out and "3/3 right counts" in out
    assert "WRONG" not in out


def test_face_is_a_value():
    face = Face(1.0, 2.0, 3.0, 4.0, 0.5)
    assert face.center == (2.5, 4.0)
    assert face == Face(1.0, 2.0, 3.0, 4.0, 0.5, landmarks=np.zeros((5, 2), dtype=np.float32))
    assert repr(face) == "Face(x=1.0, y=2.0, w=3.0, h=4.0, score=0.5)"
