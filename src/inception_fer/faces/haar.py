"""OpenCV's Haar cascade face detector (Viola-Jones), the files of ``cv2.data.haarcascades``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import InceptionFerError
from .detector import Face, FaceDetector, register_detector
from .mtcnn import nms


@register_detector("haar")
class HaarDetector(FaceDetector):
    """Frontal-face Haar cascade, plus the profile cascade (both ways round) unless
    ``profile=False``.

    ``min_face_size`` is in pixels of the image after the downscale to ``max_side``. The score is
    the cascade's last-stage weight, not a probability. No landmarks.
    """

    def __init__(
        self,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_face_size: int = 24,
        profile: bool = True,
        max_side: int = 640,
    ) -> None:
        super().__init__(max_side=max_side)
        if scale_factor <= 1:
            raise InceptionFerError(f"scale_factor must be above 1, got {scale_factor}")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_face_size = min_face_size
        names = ["haarcascade_frontalface_default.xml"]
        if profile:
            names.append("haarcascade_profileface.xml")
        self.cascades = [_cascade(name) for name in names]

    def _detect(self, image_bgr: np.ndarray) -> list[Face]:
        gray = cv2.equalizeHist(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY))
        width = gray.shape[1]
        rows = [self._run(self.cascades[0], gray)]
        for cascade in self.cascades[1:]:
            rows.append(self._run(cascade, gray))
            mirrored = self._run(cascade, np.ascontiguousarray(gray[:, ::-1]))
            mirrored[:, [0, 2]] = width - mirrored[:, [2, 0]]
            rows.append(mirrored)
        boxes = np.concatenate(rows)
        boxes = boxes[nms(boxes, 0.3, mode="min")]
        return [Face(b[0], b[1], b[2] - b[0], b[3] - b[1], b[4]) for b in boxes.tolist()]

    def _run(self, cascade: cv2.CascadeClassifier, gray: np.ndarray) -> np.ndarray:
        """One cascade's detections as (N, 5) rows of x1, y1, x2, y2, score."""
        rects, _, weights = cascade.detectMultiScale3(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_face_size, self.min_face_size),
            outputRejectLevels=True,
        )
        if len(rects) == 0:
            return np.empty((0, 5))
        boxes = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        return np.concatenate([boxes, np.asarray(weights, dtype=np.float64).reshape(-1, 1)], 1)


def _cascade(name: str) -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / name  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise InceptionFerError(
            f"OpenCV's Haar cascade {path} is missing (it ships in opencv-python-headless<5)"
        )
    return cascade
