"""Face crops and EmotionRecognizer: faces found per photo, one batch per picture, any input type.

An untrained tiny model stands in for the shipped weights, so these tests check structure; the one
test of the shipped default model's answer runs once the weights ship.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import PHOTOS_DIR
from inception_fer.classes import EMOTIONS
from inception_fer.errors import DataError, InceptionFerError
from inception_fer.faces import Face, create_detector
from inception_fer.inference import EmotionRecognizer, ImageResult, crop_faces
from inception_fer.inference.face_crop import eye_angle
from inception_fer.pretrained import DEFAULT_MODEL, list_pretrained
from inception_fer.training.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint

skimage_data = pytest.importorskip(
    "skimage.data", reason="scikit-image (a test dependency) is absent"
)

SHARED_COUNTS = {
    "multiface.jpg": 6,
    "angelina_jolie.jpg": 1,
    "kate_siegel.jpg": 1,
    "paul_rudd.jpg": 1,
}


def _checkpoint(path: Path, in_chans: int = 1) -> Path:
    meta = CheckpointMeta(
        model_name="mini_xception",
        model_kwargs={"in_chans": in_chans},
        class_names=list(EMOTIONS),
        mean=0.5,
        std=0.25,
    )
    torch.manual_seed(0)
    return save_checkpoint(path, meta.build_model(), meta)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _checkpoint(tmp_path_factory.mktemp("model") / "tiny.safetensors")


@pytest.fixture(scope="module")
def recognizer(checkpoint: Path) -> EmotionRecognizer:
    return EmotionRecognizer(model=checkpoint)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut (RGB, 512x512, one smiling face)."""
    image: np.ndarray = skimage_data.astronaut()
    return image


class _ForwardCounter:
    def __init__(self, model: torch.nn.Module) -> None:
        self.calls = 0
        self.handle = model.register_forward_hook(self._count)

    def _count(self, *_: object) -> None:
        self.calls += 1


def test_astronaut_has_one_face_with_probabilities_in_class_order(
    recognizer: EmotionRecognizer, astronaut: np.ndarray
) -> None:
    assert recognizer.classes == EMOTIONS
    (face,) = recognizer.predict(astronaut)
    x, y, w, h = face.box
    assert 205 < x + w / 2 < 245 and 100 < y + h / 2 < 140  # on her face
    assert 0.9 < face.score <= 1
    assert list(face.probabilities) == list(EMOTIONS)
    assert sum(face.probabilities.values()) == pytest.approx(1, abs=1e-5)
    assert all(0 <= p <= 1 for p in face.probabilities.values())
    assert face.emotion == max(face.probabilities, key=lambda k: face.probabilities[k])
    assert face.landmarks is not None and len(face.landmarks) == 5
    as_json = json.loads(json.dumps(face.to_dict()))
    assert as_json["emotion"] == face.emotion and as_json["box"] == list(face.box)
    assert len(as_json["landmarks"]) == 5


@pytest.mark.parametrize("name", sorted(SHARED_COUNTS))
def test_shared_photos_face_counts(recognizer: EmotionRecognizer, name: str) -> None:
    if not PHOTOS_DIR.is_dir():
        pytest.skip(
            f"shared photos not found at {PHOTOS_DIR} (CI and developer machines have them)"
        )
    faces = recognizer.predict(PHOTOS_DIR / name)
    assert len(faces) == SHARED_COUNTS[name]
    assert all(len(face.probabilities) == 7 for face in faces)


def test_every_input_type_gives_the_same_prediction(
    recognizer: EmotionRecognizer, astronaut: np.ndarray, tmp_path: Path
) -> None:
    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    bgr = np.ascontiguousarray(astronaut[:, :, ::-1])
    reference = recognizer.predict(path)
    assert len(reference) == 1
    with Image.open(path) as opened:
        for source, order in [
            (str(path), "rgb"),
            (path.read_bytes(), "rgb"),
            (opened, "rgb"),
            (astronaut, "rgb"),
            (bgr, "bgr"),
        ]:
            (face,) = recognizer.predict(source, color_order=order)  # type: ignore[arg-type]
            assert face.box == reference[0].box
            assert face.probabilities == pytest.approx(reference[0].probabilities, abs=1e-6)
    (swapped,) = recognizer.predict(bgr)  # BGR read as RGB: same face, other colours
    assert swapped.probabilities != pytest.approx(reference[0].probabilities, abs=1e-6)


def test_exif_rotated_photo_is_read_upright(
    recognizer: EmotionRecognizer, astronaut: np.ndarray, tmp_path: Path
) -> None:
    path = tmp_path / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated, displayed upright
    Image.fromarray(astronaut).transpose(Image.Transpose.ROTATE_90).save(path, exif=exif)
    (face,) = recognizer.predict(path)
    (upright,) = recognizer.predict(astronaut)
    assert np.allclose(face.box, upright.box, atol=6)


def test_all_faces_of_a_picture_go_through_the_network_in_one_batch(
    checkpoint: Path, astronaut: np.ndarray
) -> None:
    group = np.vstack([np.hstack([astronaut, astronaut[:, ::-1]])] * 2)  # four faces
    for batch_size, tta, calls in [(64, "none", 1), (2, "none", 2), (64, "flip", 2)]:
        recognizer = EmotionRecognizer(model=checkpoint, batch_size=batch_size, tta=tta)
        counter = _ForwardCounter(recognizer.model)
        faces = recognizer.predict(group)
        assert len(faces) == 4
        assert counter.calls == calls, (batch_size, tta)
        assert all(sum(f.probabilities.values()) == pytest.approx(1, abs=1e-5) for f in faces)


def test_no_face_gives_an_empty_list(recognizer: EmotionRecognizer) -> None:
    counter = _ForwardCounter(recognizer.model)
    assert recognizer.predict(np.full((240, 320, 3), 128, np.uint8)) == []
    assert recognizer.predict(np.zeros((1, 1, 3), np.uint8)) == []
    assert counter.calls == 0
    counter.handle.remove()


def test_batch_with_bad_files_completes(
    recognizer: EmotionRecognizer, astronaut: np.ndarray, tmp_path: Path
) -> None:
    good = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut).save(good)
    text = tmp_path / "readme.txt"
    text.write_text("hello")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[:2000])
    blank = np.full((100, 100, 3), 200, np.uint8)
    sources = [good, text, tmp_path / "missing.png", cut, blank, astronaut]
    results = recognizer.predict_batch(sources)  # type: ignore[arg-type]
    assert [r.ok for r in results] == [True, False, False, False, True, True]
    assert [len(r.faces) for r in results] == [1, 0, 0, 0, 0, 1]
    assert results[0].source == str(good) and results[4].source == "<array 100x100x3 uint8>"
    assert "not an image" in str(results[1].error) and "truncated" in str(results[3].error)
    assert "not found" in str(results[2].error)
    assert json.loads(json.dumps([r.to_dict() for r in results]))[1]["error"] == results[1].error
    assert isinstance(results[0], ImageResult)


def test_predict_faces_on_ready_crops(recognizer: EmotionRecognizer) -> None:
    crops = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    probs = recognizer.predict_faces(crops)
    assert probs.shape == (3, 7) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert np.allclose(recognizer.predict_faces(crops[1:2]), probs[1:2], atol=1e-5)
    assert recognizer.predict_faces(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)
    with pytest.raises(DataError, match=r"must be shaped \(N, 48, 48\), got shape \(2, 64, 64\)"):
        recognizer.predict_faces(np.zeros((2, 64, 64), np.uint8))
    with pytest.raises(DataError, match="must be a uint8 array, got float32"):
        recognizer.predict_faces(np.zeros((2, 48, 48), np.float32))


def test_model_from_file_folder_or_checkpoint_and_clear_errors(
    checkpoint: Path, tmp_path: Path, astronaut: np.ndarray
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(checkpoint, run_dir / "best.safetensors")
    detector = create_detector("mtcnn")
    reference = EmotionRecognizer(model=checkpoint, detector=detector).predict(astronaut)
    for model in (run_dir, str(checkpoint), load_checkpoint(checkpoint)):
        faces = EmotionRecognizer(model=model, detector=detector).predict(astronaut)
        assert faces[0].probabilities == pytest.approx(reference[0].probabilities, abs=1e-6)
    with pytest.raises(
        InceptionFerError, match=r"model 'nope' is neither a shipped model \(default"
    ):
        EmotionRecognizer(model="nope", detector=detector)
    with pytest.raises(InceptionFerError, match="unknown face detector 'mtcn'"):
        EmotionRecognizer(model=checkpoint, detector="mtcn")
    with pytest.raises(InceptionFerError, match="apply to a detector given by name"):
        EmotionRecognizer(model=checkpoint, detector=detector, min_face_size=20)
    with pytest.raises(InceptionFerError, match="unknown TTA mode 'x'"):
        EmotionRecognizer(model=checkpoint, detector=detector, tta="x")
    with pytest.raises(InceptionFerError, match=r"margin must be in \[0, 2\]"):
        EmotionRecognizer(model=checkpoint, detector=detector, margin=-0.1)
    with pytest.raises(InceptionFerError, match="unknown border 'wrap'"):
        EmotionRecognizer(model=checkpoint, detector=detector, border="wrap")


def test_detector_options_by_name_and_three_channel_models(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    rgb_model = _checkpoint(tmp_path / "rgb.safetensors", in_chans=3)
    recognizer = EmotionRecognizer(model=rgb_model, detector="mtcnn", min_face_size=200)
    assert recognizer.predict(astronaut) == []  # her face is about 100 pixels
    recognizer = EmotionRecognizer(model=rgb_model)
    (face,) = recognizer.predict(astronaut)
    assert sum(face.probabilities.values()) == pytest.approx(1, abs=1e-5)


def _eyes_picture(right_eye: tuple[int, int], left_eye: tuple[int, int]) -> tuple[np.ndarray, Face]:
    """A black picture with two white 'eyes' and the face a detector would report for them."""
    image = np.zeros((200, 200, 3), np.uint8)
    for eye in (right_eye, left_eye):
        cv2.circle(image, eye, 4, (255, 255, 255), -1)
    landmarks = np.array([right_eye, left_eye, (100, 120), (85, 140), (115, 140)], np.float32)
    return image, Face(60, 60, 80, 80, 0.9, landmarks)


def _eye_rows(crop: np.ndarray) -> tuple[float, float]:
    """The mean row of the bright pixels in the crop's left and right halves."""
    rows, cols = np.nonzero(crop > 100)
    half = crop.shape[1] / 2
    return float(rows[cols < half].mean()), float(rows[cols >= half].mean())


def test_alignment_levels_the_eyes() -> None:
    image, face = _eyes_picture((80, 90), (120, 110))  # tilted 26.6 degrees
    assert eye_angle(face) == pytest.approx(26.57, abs=0.01)
    left, right = _eye_rows(crop_faces(image, [face], align=True)[0])
    assert abs(left - right) < 0.5
    left, right = _eye_rows(crop_faces(image, [face], align=False)[0])
    assert right - left > 8
    no_landmarks = Face(face.x, face.y, face.w, face.h, face.score)
    assert np.array_equal(
        crop_faces(image, [no_landmarks], align=True), crop_faces(image, [face], align=False)
    )


def test_crop_geometry_margin_and_borders() -> None:
    image = np.zeros((200, 200, 3), np.uint8)
    image[40:136, 60:156] = 255  # the 'face': a white 96x96 square
    face = Face(60, 40, 96, 96, 1.0)
    crops = crop_faces(image, [face, face], size=48, margin=0.0)
    assert crops.shape == (2, 48, 48) and crops.dtype == np.uint8
    assert crops.min() == 255  # the box fills the crop exactly
    (wide,) = crop_faces(image, [face], size=48, margin=0.5)  # box is half the crop, centred
    assert wide[12:36, 12:36].min() == 255
    assert wide[:11].max() == 0 and wide[37:].max() == 0 and wide[:, :11].max() == 0
    tall = Face(60, 40, 48, 96, 1.0)  # a square on the longer side, around the box centre
    (square,) = crop_faces(image, [tall], size=48, margin=0.0)
    assert square[:, :11].max() == 0 and square[:, 13:].min() == 255
    corner = Face(0, 0, 40, 40, 1.0)  # a face at the corner: the margin lies outside
    image = np.repeat(np.arange(1, 201, dtype=np.uint8)[:, None, None], 200, axis=1)
    image = np.repeat(image, 3, axis=2)  # brighter downwards, never black
    (black,) = crop_faces(image, [corner], margin=0.5, border="constant")
    (mirrored,) = crop_faces(image, [corner], margin=0.5, border="reflect")
    assert black[:11].max() == 0 and black[13:36, 13:36].min() > 0
    assert mirrored[:11].min() > 0  # the rows above the picture mirror the rows inside
    assert np.abs(mirrored[:11].astype(int) - mirrored[24:13:-1].astype(int)).max() <= 2
    assert crop_faces(image, []).shape == (0, 48, 48)


def test_big_faces_are_area_averaged_not_aliased() -> None:
    stripes = np.zeros((960, 960, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: their average is mid gray
    (crop,) = crop_faces(stripes, [Face(0, 0, 960, 960, 1.0)], size=48)
    assert np.abs(crop[4:-4, 4:-4].astype(int) - 128).max() <= 2


@pytest.mark.skipif(
    DEFAULT_MODEL not in list_pretrained(), reason="the default model's weights are not shipped yet"
)
def test_shipped_default_model_sees_the_astronaut_smile(astronaut: np.ndarray) -> None:
    recognizer = EmotionRecognizer()
    assert recognizer.name == DEFAULT_MODEL  # the shipped name, not the network's ("ensemble")
    (face,) = recognizer.predict(astronaut)
    assert face.emotion == "happy"
