"""Cut detected faces out of a photo the way FER2013's faces were cut: square, centred, 48x48 gray.

Each face becomes a square around its detector box, grown by ``margin`` on every side, optionally
rotated about the box centre so that the eyes are level (``align``, from the detector's landmarks),
converted to gray and shrunk with area averaging. Parts of the square outside the photo are filled
by ``border``: ``"reflect"`` (mirror the photo at its edge), ``"replicate"`` (repeat the edge
pixels) or ``"constant"`` (black).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from ..errors import InceptionFerError
from ..faces import Face
from ..faces.detector import check_image

DEFAULT_MARGIN = 0.0
"""Extra context on each side of the detector box, as a fraction of the box's longer side.

Measured with MTCNN (the default detector) on FER2013 test faces (253 of 300 found), upscaled 4x
and padded so that the whole head is visible: the FER2013 frame is 0.96x the box's longer side
(its height; quartiles 0.86-1.06), centred on the box (median offset 0.1% of the frame). So the
square on the box height, with no margin, reproduces FER2013's framing: forehead to chin, cheeks
to ears. Other detectors' boxes are sized differently; measure before changing detector.

Accuracy agrees (``python benchmarks/crop_accuracy.py``: all 3,589 PublicTest faces set in
photos, 3,024 re-detected, shipped model): margin 0 gives 65.3 % (the same faces as FER2013 crops
them: 66.2 %), 0.05 gives 63.9 %, 0.1 61.2 %, 0.2 53.9 %.
"""

DEFAULT_ALIGN = True
"""Rotate faces so that the eyes are level (when the detector gives landmarks).

FER2013's faces are roughly but not exactly level (roll median -0.4 degrees, 10-90% range -12 to
+7 degrees, same measurement as :data:`DEFAULT_MARGIN`): levelling a photo's face puts it at
the centre of what the network saw in training. Measured with ``benchmarks/crop_accuracy.py``
(margin 0, shipped model): on FER2013's own, nearly level faces alignment changes little (65.0 %
aligned against 65.3 % not, 3,024 faces); on the same faces turned by up to 20 degrees either way,
as heads tilt in photos (``--roll 20 --limit 1500``, 1,200 re-detected), it is worth +0.9 points
(64.2 % against 63.3 %; 63.5 % for the level FER2013 crops).
"""

BORDERS: dict[str, int] = {
    "reflect": cv2.BORDER_REFLECT_101,
    "replicate": cv2.BORDER_REPLICATE,
    "constant": cv2.BORDER_CONSTANT,
}
"""Valid ``border`` values and the OpenCV border modes they name."""


def eye_angle(face: Face) -> float:
    """The in-plane roll of ``face`` in degrees (positive: its left eye, on the image's right, is
    lower), 0 when the detector gave no landmarks."""
    if face.landmarks is None:
        return 0.0
    (rx, ry), (lx, ly) = face.landmarks[0], face.landmarks[1]
    return math.degrees(math.atan2(float(ly - ry), float(lx - rx)))


def crop_transform(face: Face, margin: float, align: bool, size: int) -> np.ndarray:
    """The 2x3 affine matrix taking photo pixels to the ``size`` x ``size`` crop of ``face``."""
    side = max(face.w, face.h) * (1 + 2 * margin)
    cx, cy = face.center
    angle = math.radians(eye_angle(face)) if align else 0.0
    # cv2.getRotationMatrix2D's matrix (counter-clockwise on screen for a positive angle), with
    # the translation that puts the box centre at the crop's centre; boxes measure pixel edges
    # (pixel i spans [i, i + 1]) while OpenCV puts pixel i at i, hence the half pixels
    a, b = size / side * math.cos(angle), size / side * math.sin(angle)
    cx, cy, half = cx - 0.5, cy - 0.5, size / 2 - 0.5
    return np.array(
        [[a, b, half - a * cx - b * cy], [-b, a, half + b * cx - a * cy]], dtype=np.float64
    )


def check_crop_options(size: int, margin: float, border: str) -> None:
    """Raise InceptionFerError unless these are valid :func:`crop_faces` options."""
    if size < 1:
        raise InceptionFerError(f"crop size must be at least 1 pixel, got {size}")
    if not 0 <= margin <= 2:
        raise InceptionFerError(f"margin must be in [0, 2] (a fraction of the face), got {margin}")
    if border not in BORDERS:
        raise InceptionFerError(f"unknown border {border!r}; valid borders: {', '.join(BORDERS)}")


def crop_faces(
    image_bgr: np.ndarray,
    faces: Sequence[Face],
    size: int = 48,
    margin: float = DEFAULT_MARGIN,
    align: bool = DEFAULT_ALIGN,
    border: str = "reflect",
) -> np.ndarray:
    """The gray crops (N, size, size) uint8 of ``faces`` found in ``image_bgr`` (HxWx3 uint8 BGR).

    The crop is a square on the box's longer side, centred on the box, grown on each side by
    ``margin`` times that side; ``align`` levels the eyes of faces that have landmarks. The photo
    is warped at its own resolution first and then shrunk with ``INTER_AREA``, so large faces are
    averaged, not aliased.
    """
    check_image(image_bgr)
    check_crop_options(size, margin, border)
    crops = np.empty((len(faces), size, size), dtype=np.uint8)
    if not faces:
        return crops
    gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    for i, face in enumerate(faces):
        side = max(face.w, face.h) * (1 + 2 * margin)
        work = max(size, math.ceil(side))  # warp at the photo's resolution, then area-average
        matrix = crop_transform(face, margin, align, work)
        warped = cv2.warpAffine(
            gray, matrix, (work, work), flags=cv2.INTER_LINEAR, borderMode=BORDERS[border]
        )
        crops[i] = cv2.resize(warped, (size, size), interpolation=cv2.INTER_AREA)
    return crops
