"""Emotions over time in a video: every N-th frame through :class:`EmotionRecognizer`.

A video is read with OpenCV (``cv2.VideoCapture``, any container and codec its FFmpeg reads).
Each sampled frame keeps all its faces; the *timeline* follows the video's subject, the largest
face of each frame, and averages it per second.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import DataError, InceptionFerError
from .recognizer import EmotionRecognizer, FacePrediction

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv"}
)
"""File name endings read as videos by ``inception-fer predict``."""

FALLBACK_FPS = 25.0
"""Frame rate assumed where a video's header gives none."""


@dataclass(frozen=True)
class FrameResult:
    """The faces of one sampled frame: its index from 0 and its time in seconds."""

    index: int
    time_s: float
    faces: list[FacePrediction]

    @property
    def subject(self) -> FacePrediction | None:
        """The largest face, taken as the video's subject; None in a frame with no face."""
        return max(self.faces, key=lambda f: f.box[2] * f.box[3], default=None)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, floats and strings, ready for ``json.dumps``."""
        return {
            "frame": self.index,
            "time_s": round(self.time_s, 3),
            "faces": [f.to_dict() for f in self.faces],
        }


@dataclass(frozen=True)
class SecondSummary:
    """The subject's mean probabilities over the sampled frames of one second of video."""

    second: int
    frames: int
    frames_with_face: int
    probabilities: dict[str, float] | None

    @property
    def emotion(self) -> str | None:
        """The most probable class; None where no sampled frame of this second showed a face."""
        if self.probabilities is None:
            return None
        return max(self.probabilities, key=self.probabilities.__getitem__)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, floats and strings, ready for ``json.dumps``."""
        return {
            "second": self.second,
            "frames": self.frames,
            "frames_with_face": self.frames_with_face,
            "emotion": self.emotion,
            "probabilities": self.probabilities,
        }


@dataclass(frozen=True)
class VideoResult:
    """The sampled frames of one video, or why it could not be read (``error``)."""

    source: str
    fps: float = 0.0
    frame_count: int = 0
    every: int = 1
    frames: list[FrameResult] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the video was read."""
        return self.error is None

    def per_second(self, classes: tuple[str, ...]) -> list[SecondSummary]:
        """One summary per second of video, in order, seconds with no sampled frame left out."""
        by_second: dict[int, list[FrameResult]] = {}
        for frame in self.frames:
            by_second.setdefault(int(frame.time_s), []).append(frame)
        summaries = []
        for second, frames in sorted(by_second.items()):
            subjects = [f.subject for f in frames if f.subject is not None]
            probabilities = None
            if subjects:
                mean = np.mean([[s.probabilities[c] for c in classes] for s in subjects], axis=0)
                probabilities = {c: float(p) for c, p in zip(classes, mean, strict=True)}
            summaries.append(SecondSummary(second, len(frames), len(subjects), probabilities))
        return summaries

    def to_dict(self, classes: tuple[str, ...]) -> dict[str, Any]:
        """Plain lists, floats and strings, ready for ``json.dumps``."""
        return {
            "source": self.source,
            "fps": self.fps,
            "frame_count": self.frame_count,
            "every": self.every,
            "frames": [f.to_dict() for f in self.frames],
            "per_second": [s.to_dict() for s in self.per_second(classes)],
            "error": self.error,
        }


def is_video(path: Path) -> bool:
    """Whether ``path`` is named like a video file."""
    return path.suffix.lower() in VIDEO_SUFFIXES


@contextmanager
def open_video(path: str | Path) -> Iterator[cv2.VideoCapture]:
    """An opened ``cv2.VideoCapture`` of ``path``, released on exit; DataError where OpenCV
    cannot open it (missing file, not a video, unknown codec)."""
    if not Path(path).is_file():
        raise DataError(f"video {path} does not exist")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise DataError(f"cannot read video {path}: not a video, or a codec OpenCV lacks")
        yield capture
    finally:
        capture.release()


def video_fps(capture: cv2.VideoCapture) -> float:
    """The capture's frame rate, :data:`FALLBACK_FPS` where its header gives none."""
    fps = float(capture.get(cv2.CAP_PROP_FPS))
    return fps if math.isfinite(fps) and 0 < fps < 1000 else FALLBACK_FPS


def iter_frames(capture: cv2.VideoCapture, every: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """(index, BGR frame) of every ``every``-th frame from 0; skipped frames are not decoded."""
    if every < 1:
        raise InceptionFerError(f"--every must be at least 1 frame, got {every}")
    index = 0
    while True:
        if index % every == 0:
            ok, frame = capture.read()
            if not ok:
                return
            yield index, frame
        elif not capture.grab():
            return
        index += 1


FrameCallback = Callable[[np.ndarray, FrameResult], None]


def predict_video(
    recognizer: EmotionRecognizer,
    path: str | Path,
    every: int = 1,
    on_frame: FrameCallback | None = None,
) -> VideoResult:
    """The faces of every ``every``-th frame of the video at ``path``.

    ``on_frame(frame_bgr, result)`` is called for each sampled frame (to draw it, say). A video
    that cannot be opened raises DataError; one that breaks off part-way keeps the frames read.
    """
    with open_video(path) as capture:
        return predict_capture(recognizer, capture, path, every, on_frame)


def predict_capture(
    recognizer: EmotionRecognizer,
    capture: cv2.VideoCapture,
    path: str | Path,
    every: int = 1,
    on_frame: FrameCallback | None = None,
) -> VideoResult:
    """:func:`predict_video` on a capture opened by :func:`open_video` (``path`` names it in
    the result and errors)."""
    fps = video_fps(capture)
    total = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
    frames = []
    for index, image in iter_frames(capture, every):
        result = FrameResult(index, index / fps, recognizer.predict_bgr(image))
        frames.append(result)
        if on_frame is not None:
            on_frame(image, result)
    if not frames:
        raise DataError(f"cannot read video {path}: no frame could be decoded")
    return VideoResult(str(path), fps, total or frames[-1].index + 1, every, frames)
