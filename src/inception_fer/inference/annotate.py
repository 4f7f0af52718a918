"""Draw each face's box, top emotion and probability bars onto a picture."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .recognizer import FacePrediction

_BOX_COLOR = (60, 200, 60)
_BAR_COLOR = (230, 160, 40)
_TEXT_COLOR = (255, 255, 255)
_PANEL_COLOR = (30, 30, 30)


def annotate(image_bgr: np.ndarray, faces: Sequence[FacePrediction]) -> np.ndarray:
    """A copy of ``image_bgr`` with every face boxed, labelled with its top emotion, and a panel
    of probability bars beside it (inside the picture). Sizes scale with the picture."""
    out = image_bgr.copy()
    height, width = out.shape[:2]
    scale = max(0.35, min(width, height) / 900)
    thickness = max(1, round(2 * scale))
    for face in faces:
        x, y, w, h = (round(v) for v in face.box)
        cv2.rectangle(out, (x, y), (x + w, y + h), _BOX_COLOR, thickness)
        label = f"{face.emotion} {face.probabilities[face.emotion]:.0%}"
        _label(out, label, (x, max(0, y - 4)), scale, thickness)
        _bars(out, face, (x + w + 4, y), scale)
    return out


def _label(image: np.ndarray, text: str, origin: tuple[int, int], scale: float, thick: int) -> None:
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    x, y = origin
    y = max(th + base, y)
    cv2.rectangle(image, (x, y - th - base), (x + tw, y + base // 2), _BOX_COLOR, cv2.FILLED)
    cv2.putText(image, text, (x, y - base // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, _TEXT_COLOR,
                thick, cv2.LINE_AA)  # fmt: skip


def _bars(image: np.ndarray, face: FacePrediction, origin: tuple[int, int], scale: float) -> None:
    font_scale = 0.8 * scale
    row = max(10, round(22 * scale))
    name_w = max(cv2.getTextSize(n, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)[0][0]
                 for n in face.probabilities)  # fmt: skip
    bar_w = round(80 * scale)
    panel_w = name_w + bar_w + 12
    panel_h = row * len(face.probabilities) + 6
    height, width = image.shape[:2]
    x = min(origin[0], width - panel_w)
    y = min(max(0, origin[1]), max(0, height - panel_h))
    x = max(0, x)
    overlay = image.copy()
    cv2.rectangle(overlay, (x, y), (x + panel_w, y + panel_h), _PANEL_COLOR, cv2.FILLED)
    cv2.addWeighted(overlay, 0.6, image, 0.4, 0, dst=image)
    for i, (name, prob) in enumerate(face.probabilities.items()):
        top = y + 3 + i * row
        cv2.putText(image, name, (x + 4, top + row - 6), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    _TEXT_COLOR, 1, cv2.LINE_AA)  # fmt: skip
        left = x + name_w + 8
        cv2.rectangle(image, (left, top + 3), (left + round(bar_w * prob), top + row - 3),
                      _BAR_COLOR, cv2.FILLED)  # fmt: skip
