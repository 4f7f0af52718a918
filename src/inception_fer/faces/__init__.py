"""Face detection: the ``FaceDetector`` interface, detectors by name, and ``Face`` results."""

from __future__ import annotations

from . import haar, mtcnn, yunet
from .detector import (
    DEFAULT_DETECTOR,
    Face,
    FaceDetector,
    create_detector,
    list_detectors,
    register_detector,
)

__all__ = [
    "DEFAULT_DETECTOR",
    "Face",
    "FaceDetector",
    "create_detector",
    "haar",
    "list_detectors",
    "mtcnn",
    "register_detector",
    "yunet",
]
