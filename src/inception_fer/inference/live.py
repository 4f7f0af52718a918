"""Live emotions from a camera, drawn in a window as they come.

The camera is read with OpenCV; the window is matplotlib's, since the ``opencv-python-headless``
wheel we depend on has no GUI. It needs a display and an interactive matplotlib backend (Tk, Qt,
GTK, macOS); where there is none, or no camera, the error says so before anything runs.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Protocol

import cv2
import numpy as np

from ..errors import InceptionFerError
from .annotate import annotate
from .recognizer import EmotionRecognizer, FacePrediction
from .video import iter_frames


class FrameSink(Protocol):
    """Where live frames go: ``show`` draws one annotated frame and says whether to go on."""

    def show(self, frame_bgr: np.ndarray) -> bool: ...


def open_camera(index: int) -> cv2.VideoCapture:
    """The opened camera ``index`` (0 is the system's default camera)."""
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        capture.release()
        raise InceptionFerError(
            f"no camera at index {index}: OpenCV could not open it (none attached, in use, or "
            "no permission); try another --webcam index, or predict on a video file"
        )
    return capture


def run_live(
    recognizer: EmotionRecognizer,
    capture: cv2.VideoCapture,
    sink: FrameSink,
    every: int = 1,
    max_frames: int | None = None,
) -> int:
    """Recognise every ``every``-th frame of ``capture`` and show it annotated (with the frame
    rate) until the sink says stop, the stream ends or ``max_frames`` are shown; the count shown.

    Between recognitions, frames are shown with the last faces found, so the picture stays live.
    """
    faces: list[FacePrediction] = []
    shown, fps, last = 0, 0.0, time.perf_counter()
    for index, frame in iter_frames(capture, 1):
        if index % every == 0:
            faces = recognizer.predict_bgr(frame)
        now = time.perf_counter()
        fps = 0.9 * fps + 0.1 / max(now - last, 1e-6) if shown else 0.0
        last = now
        picture = annotate(frame, faces)
        cv2.putText(
            picture,
            f"{fps:.1f} fps",
            (8, 24),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.7,
            (255, 255, 255),
            2,
            cv2.LINE_AA,
        )
        shown += 1
        if not sink.show(picture) or (max_frames is not None and shown >= max_frames):
            break
    return shown


class MatplotlibWindow:
    """A matplotlib window showing frames; closing it or pressing ``q`` or Esc stops."""

    def __init__(self, title: str) -> None:
        check_display()
        import matplotlib.pyplot as plt

        self._plt = plt
        self.figure = plt.figure(title)
        self.axes = self.figure.add_axes((0, 0, 1, 1))
        self.axes.set_axis_off()
        self._image: object | None = None
        self._open = True
        self.figure.canvas.mpl_connect("close_event", lambda _event: self._stop())
        self.figure.canvas.mpl_connect("key_press_event", self._on_key)

    def _stop(self) -> None:
        self._open = False

    def _on_key(self, event: object) -> None:
        if getattr(event, "key", None) in ("q", "escape"):
            self._stop()

    def show(self, frame_bgr: np.ndarray) -> bool:
        rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
        if self._image is None:
            self._image = self.axes.imshow(rgb)
        else:
            self._image.set_data(rgb)  # type: ignore[attr-defined]
        self._plt.pause(0.001)
        return self._open

    def close(self) -> None:
        self._plt.close(self.figure)


def check_display() -> None:
    """Raise InceptionFerError unless a window can be shown: a display, and an interactive
    matplotlib backend."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise InceptionFerError(
            "no display for the live window (DISPLAY is not set); run --webcam on a desktop, or "
            "record a video and run predict on the file"
        )
    import matplotlib
    from matplotlib.backends import BackendFilter, backend_registry

    backend = matplotlib.get_backend().lower()
    if backend not in backend_registry.list_builtin(BackendFilter.INTERACTIVE):
        raise InceptionFerError(
            f"matplotlib's backend {backend!r} cannot open a window; install Tk (python3-tk) or "
            "PyQt, or set MPLBACKEND to an interactive backend"
        )
