"""What ``predict`` writes for a video: the annotated video and a plot of emotions over time."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..atomic import atomic_path, atomic_save
from ..errors import InceptionFerError
from .annotate import annotate
from .video import FrameResult, VideoResult

VIDEO_FOURCC = "mp4v"
"""Codec of annotated videos: MPEG-4 Part 2, which every OpenCV wheel can write."""


class AnnotatedVideoWriter:
    """Writes sampled frames, annotated, to an ``.mp4`` at ``fps / every`` frames per second."""

    def __init__(self, path: Path, fps: float, every: int) -> None:
        self.path, self.fps = path, fps / every
        self._writer: cv2.VideoWriter | None = None

    def __call__(self, frame_bgr: np.ndarray, result: FrameResult) -> None:
        if self._writer is None:
            height, width = frame_bgr.shape[:2]
            fourcc = cv2.VideoWriter.fourcc(*VIDEO_FOURCC)
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (width, height))
            if not self._writer.isOpened():
                raise InceptionFerError(f"cannot write video {self.path} with codec {VIDEO_FOURCC}")
        self._writer.write(annotate(frame_bgr, result.faces))

    def close(self) -> None:
        """Finish the file (a no-op where no frame came)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None


@contextlib.contextmanager
def annotated_video(
    path: str | os.PathLike[str], fps: float, every: int
) -> Iterator[AnnotatedVideoWriter]:
    """An :class:`AnnotatedVideoWriter` whose file appears at ``path`` only when complete."""
    with atomic_path(path) as tmp:
        writer = AnnotatedVideoWriter(tmp, fps, every)
        try:
            yield writer
        finally:
            writer.close()


def plot_timeline(
    result: VideoResult, classes: tuple[str, ...], path: str | os.PathLike[str]
) -> Path:
    """Draw the subject's emotion probabilities against time (one line per class, gaps where no
    face was found, the top emotion as a band below) and save it atomically as an image."""
    times = np.array([f.time_s for f in result.frames])
    probs = np.full((len(result.frames), len(classes)), np.nan)
    for row, frame in enumerate(result.frames):
        if frame.subject is not None:
            probs[row] = [frame.subject.probabilities[c] for c in classes]
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax, band = fig.subplots(2, 1, sharex=True, height_ratios=[5, 1])
    colors = [f"C{i}" for i in range(len(classes))]
    for k, (name, color) in enumerate(zip(classes, colors, strict=True)):
        ax.plot(times, probs[:, k], label=name, color=color, linewidth=1.4)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability (largest face)")
    ax.set_title(f"{Path(result.source).name}: emotions over time (every {result.every} frames)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    ax.grid(alpha=0.3)
    top = np.where(np.isnan(probs).any(axis=1), -1, np.nan_to_num(probs).argmax(axis=1))
    step = result.every / result.fps
    for t, k in zip(times, top, strict=True):
        band.axvspan(t, t + step, color="0.85" if k < 0 else colors[k], linewidth=0)
    band.set_yticks([])
    band.set_ylabel("top", rotation=0, ha="right", va="center")
    band.set_xlabel("time (s)")
    band.set_xlim(0, max(float(times[-1]) + step, step))
    return atomic_save(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
