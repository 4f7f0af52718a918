"""Videos and the live loop: ``predict`` on a clip written with OpenCV, and bad videos."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from inception_fer.classes import EMOTIONS
from inception_fer.cli.main import main
from inception_fer.inference import EmotionRecognizer
from inception_fer.inference.live import run_live
from inception_fer.inference.video import iter_frames, open_video, predict_video

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image gives the test's face")

FPS = 10
FACE_FRAMES = 10  # the first second shows the astronaut, the next one a blank wall


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 s, 320x320 MJPG clip: 1 s of the astronaut's face, then 1 s of gray."""
    face = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)
    face = cv2.resize(face, (320, 320), interpolation=cv2.INTER_AREA)
    blank = np.full_like(face, 128)
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), FPS, (320, 320))
    for i in range(2 * FPS):
        writer.write(face if i < FACE_FRAMES else blank)
    writer.release()
    return path


def test_iter_frames_samples_every_nth(clip: Path) -> None:
    with open_video(clip) as capture:
        indices = [i for i, _ in iter_frames(capture, every=3)]
    assert indices == list(range(0, 2 * FPS, 3))


def test_predict_video_json_frames_and_seconds(clip: Path, checkpoint: Path, tmp_path: Path,
                                               capsys) -> None:  # fmt: skip
    out, plots = tmp_path / "annotated", tmp_path / "plots"
    code = main(["predict", str(clip), "--model", str(checkpoint), "--every", "2", "--json",
                 "--save-annotated", str(out), "--timeline", str(plots)])  # fmt: skip
    assert code == 0
    (video,) = json.loads(capsys.readouterr().out)
    assert video["fps"] == pytest.approx(FPS) and video["frame_count"] == 2 * FPS
    frames = video["frames"]
    assert [f["frame"] for f in frames] == list(range(0, 2 * FPS, 2))
    assert [f["time_s"] for f in frames[:3]] == pytest.approx([0.0, 0.2, 0.4])
    assert all(len(f["faces"]) == 1 for f in frames if f["frame"] < FACE_FRAMES)
    assert all(f["faces"] == [] for f in frames if f["frame"] >= FACE_FRAMES)
    first, second = video["per_second"]
    assert (first["frames"], first["frames_with_face"]) == (5, 5)
    assert sum(first["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert second["frames_with_face"] == 0 and second["emotion"] is None
    # The annotated video holds the sampled frames, drawn on where the face is.
    annotated = out / "clip.annotated.mp4"
    with open_video(annotated) as capture:
        drawn = [frame for _, frame in iter_frames(capture)]
    assert len(drawn) == len(frames) and drawn[0].shape == (320, 320, 3)
    x, y, w, _ = (round(v) for v in frames[0]["faces"][0]["box"])
    assert int(drawn[0][y, x : x + w, 1].mean()) > int(drawn[0][y, x : x + w, 2].mean()) + 40
    timeline = cv2.imread(str(plots / "clip.emotions.png"))
    assert timeline is not None and timeline.std() > 10
    assert not list(out.glob(".*")) and not list(plots.glob(".*"))  # no temporary files left


def test_per_second_csv_and_table(clip: Path, checkpoint: Path, capsys) -> None:
    assert main(["predict", str(clip), "--model", str(checkpoint), "--every", "5",
                 "--per-second", "--csv"]) == 0  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["second"], r["frames"], r["frames_with_face"]) for r in rows] == [
        ("0", "2", "2"),
        ("1", "2", "0"),
    ]
    assert rows[0]["emotion"] in EMOTIONS and rows[1]["emotion"] == ""
    assert main(["predict", str(clip), "--model", str(checkpoint), "--every", "5"]) == 0
    text = capsys.readouterr().out
    assert "20 frames at 10.00 fps, every 5" in text
    assert text.count(": face 0 at") == 2 and text.count(": no face found") == 2


def test_per_frame_csv_has_frame_and_time(clip: Path, checkpoint: Path, capsys) -> None:
    assert main(["predict", str(clip), "--model", str(checkpoint), "--every", "4", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["frame"] for r in rows] == ["0", "4", "8"]
    assert [float(r["time_s"]) for r in rows] == pytest.approx([0.0, 0.4, 0.8])


def test_shipped_model_reads_the_astronauts_smile_on_video(clip: Path) -> None:
    recognizer = EmotionRecognizer()
    result = predict_video(recognizer, clip, every=5)
    first, _ = result.per_second(recognizer.classes)
    assert first.emotion == "happy"


def test_unreadable_video_is_reported_and_the_rest_go_on(clip: Path, checkpoint: Path,
                                                         tmp_path: Path, capsys) -> None:  # fmt: skip
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 but nothing after")
    code = main(["predict", str(bad), str(clip), "--model", str(checkpoint), "--every", "10",
                 "--json"])  # fmt: skip
    assert code == 0
    broken, good = json.loads(capsys.readouterr().out)
    assert "cannot read video" in broken["error"] and "broken.mp4" in broken["error"]
    assert good["error"] is None and len(good["frames"]) == 2
    assert main(["predict", str(bad), "--model", str(checkpoint)]) == 1


def test_bad_every_and_missing_camera(checkpoint: Path, capsys) -> None:
    assert main(["predict", "--sample", "--every", "0", "--model", str(checkpoint)]) == 2
    assert "--every must be at least 1" in capsys.readouterr().err
    assert main(["predict", "--webcam", "7", "--model", str(checkpoint)]) == 2
    assert "no camera at index 7" in capsys.readouterr().err


class RecordingSink:
    """Stands in for the window: keeps what it is shown, and stops after ``stop_after``."""

    def __init__(self, stop_after: int) -> None:
        self.frames: list[np.ndarray] = []
        self.stop_after = stop_after

    def show(self, frame_bgr: np.ndarray) -> bool:
        self.frames.append(frame_bgr)
        return len(self.frames) < self.stop_after


def test_live_loop_draws_frames_until_the_window_stops(clip: Path, checkpoint: Path) -> None:
    recognizer = EmotionRecognizer(model=checkpoint)
    sink = RecordingSink(stop_after=6)
    with open_video(clip) as capture:
        shown = run_live(recognizer, capture, sink, every=3)
        first_raw = next(iter_frames(cv2.VideoCapture(str(clip))))[1]
    assert shown == 6 and len(sink.frames) == 6
    # Frames between recognitions still carry the last box found.
    for frame in sink.frames:
        assert np.abs(frame.astype(int) - first_raw.astype(int)).max() > 100
