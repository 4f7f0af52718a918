"""The face detector interface (``Face``, ``FaceDetector``) and the registry of detectors by
name."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import cv2
import numpy as np

from ..errors import DataError, InceptionFerError


@dataclass(frozen=True)
class Face:
    """One detected face, in pixels of the image given to ``FaceDetector.detect``.

    ``x, y`` is the box's top-left corner and ``w, h`` its size, as floats (sub-pixel after the
    mapping back from a downscaled image); the box lies inside the image. ``score`` is the
    detector's confidence, higher is surer (a probability for MTCNN and YuNet, the cascade's stage
    weight for Haar). ``landmarks`` is None or a float32 (5, 2) array of (x, y) points: the person's
    right eye (on the image's left in a frontal face), left eye, nose tip, right and left mouth
    corners.
    """

    x: float
    y: float
    w: float
    h: float
    score: float
    landmarks: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def center(self) -> tuple[float, float]:
        """The box centre (x, y)."""
        return self.x + self.w / 2, self.y + self.h / 2

    def scaled(self, sx: float, sy: float, width: int, height: int) -> Face:
        """This face with coordinates multiplied by (sx, sy), the box clipped to width x height."""
        x1, y1 = max(0.0, self.x * sx), max(0.0, self.y * sy)
        x2, y2 = (
            min(float(width), (self.x + self.w) * sx),
            min(float(height), (self.y + self.h) * sy),
        )
        landmarks = None
        if self.landmarks is not None:
            landmarks = (self.landmarks * np.array([sx, sy], dtype=np.float32)).astype(np.float32)
        return Face(x1, y1, max(0.0, x2 - x1), max(0.0, y2 - y1), self.score, landmarks)


class FaceDetector(ABC):
    """Finds faces in a BGR uint8 image; big images are downscaled first, boxes mapped back.

    Subclasses implement ``_detect`` on an image whose longer side is at most ``max_side``.
    """

    def __init__(self, max_side: int = 640) -> None:
        if max_side < 32:
            raise InceptionFerError(f"max_side must be at least 32 pixels, got {max_side}")
        self.max_side = max_side

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        """Faces in ``image_bgr`` (HxWx3 uint8, BGR as OpenCV reads it), highest score first."""
        check_image(image_bgr)
        image_bgr = np.ascontiguousarray(image_bgr)
        height, width = image_bgr.shape[:2]
        scale = self.max_side / max(height, width)
        small = image_bgr
        if scale < 1:
            small = downscale(
                image_bgr, (max(1, round(width * scale)), max(1, round(height * scale)))
            )
        sx, sy = width / small.shape[1], height / small.shape[0]
        faces = [face.scaled(sx, sy, width, height) for face in self._detect(small)]
        faces = [face for face in faces if face.w > 0 and face.h > 0]
        return sorted(faces, key=lambda face: face.score, reverse=True)

    @abstractmethod
    def _detect(self, image_bgr: np.ndarray) -> list[Face]:
        """Faces in an image already checked and downscaled, in its own pixels."""


def downscale(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average ``image`` down to ``size`` (width, height).

    Exact halvings (dropping an odd last row or column) come first while the image is at least
    twice the size: OpenCV's fast path, twice as fast on a 2048-pixel photo as one big step.
    """
    while image.shape[1] >= 2 * size[0] and image.shape[0] >= 2 * size[1]:
        half_h, half_w = image.shape[0] // 2, image.shape[1] // 2
        even = image[: 2 * half_h, : 2 * half_w]
        image = cv2.resize(even, (half_w, half_h), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def check_image(image: np.ndarray) -> None:
    """Raise DataError unless ``image`` is a non-empty HxWx3 uint8 array."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        kind = getattr(image, "dtype", type(image).__name__)
        raise DataError(f"face detection needs a uint8 image array, got {kind}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise DataError(f"face detection needs an HxWx3 BGR image, got shape {image.shape}")


DetectorFactory = Callable[..., FaceDetector]
Factory = TypeVar("Factory", bound=DetectorFactory)

DEFAULT_DETECTOR = "mtcnn"
_DETECTORS: dict[str, DetectorFactory] = {}


def register_detector(name: str) -> Callable[[Factory], Factory]:
    """Register a detector class (or factory) under ``name``."""

    def decorate(factory: Factory) -> Factory:
        if name in _DETECTORS:
            raise ValueError(f"face detector {name!r} is registered twice")
        _DETECTORS[name] = factory
        return factory

    return decorate


def list_detectors() -> list[str]:
    """Names of the registered face detectors, sorted."""
    return sorted(_DETECTORS)


def create_detector(name: str = DEFAULT_DETECTOR, **kwargs: Any) -> FaceDetector:
    """Build the detector registered as ``name`` with its options (e.g. ``model_path`` for
    yunet)."""
    try:
        factory = _DETECTORS[name]
    except KeyError:
        valid = ", ".join(list_detectors())
        raise InceptionFerError(
            f"unknown face detector {name!r}; valid detectors: {valid}"
        ) from None
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as error:
        raise InceptionFerError(f"bad option for face detector {name!r}: {error}") from None
    return factory(**kwargs)
