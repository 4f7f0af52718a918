"""Draw Grad-CAM maps: over a face crop, and warped back onto the photo the face came from."""

from __future__ import annotations

import cv2
import numpy as np


def _colored(cam: np.ndarray) -> np.ndarray:
    """A map in [0, 1] (H, W) as a BGR JET heatmap, uint8."""
    return cv2.applyColorMap(np.clip(cam * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)


def heatmap_overlay(crop_gray: np.ndarray, cam: np.ndarray, size: int = 192,
                    alpha: float = 0.45) -> np.ndarray:  # fmt: skip
    """The gray crop beside it with the map blended over it, both ``size`` px high, BGR."""
    face = cv2.cvtColor(cv2.resize(crop_gray, (size, size), interpolation=cv2.INTER_CUBIC),
                        cv2.COLOR_GRAY2BGR)  # fmt: skip
    heat = _colored(cv2.resize(cam, (size, size), interpolation=cv2.INTER_LINEAR))
    blended = cv2.addWeighted(face, 1 - alpha, heat, alpha, 0)
    return np.hstack([face, np.full((size, 4, 3), 255, np.uint8), blended])


def photo_overlay(image_bgr: np.ndarray, cams: list[np.ndarray], transforms: list[np.ndarray],
                  alpha: float = 0.5) -> np.ndarray:  # fmt: skip
    """``image_bgr`` with each face's map (in crop coordinates) warped back by the inverse of its
    crop ``transform`` (2x3, photo -> crop) and blended in, in proportion to the map's value."""
    out = image_bgr.astype(np.float32)
    height, width = image_bgr.shape[:2]
    for cam, matrix in zip(cams, transforms, strict=True):
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        heat = cv2.warpAffine(_colored(cam), matrix, (width, height), flags=flags)
        weight = cv2.warpAffine(cam.astype(np.float32), matrix, (width, height), flags=flags)
        weight = (alpha * np.clip(weight, 0, 1))[..., None]
        out = out * (1 - weight) + heat.astype(np.float32) * weight
    return np.clip(out, 0, 255).astype(np.uint8)
