"""OpenCV's YuNet face detector (``cv2.FaceDetectorYN``) from an ``.onnx`` file the user supplies.

No package ships the model, so it is never downloaded: get ``face_detection_yunet_2023mar.onnx``
from the OpenCV model zoo and pass its path as ``model_path``.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import CheckpointError, InceptionFerError
from .detector import Face, FaceDetector, register_detector


@register_detector("yunet")
class YuNetDetector(FaceDetector):
    """YuNet with five landmarks per face; ``score_threshold`` is its face-probability cut-off."""

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        score_threshold: float = 0.7,
        nms_threshold: float = 0.3,
        max_side: int = 640,
    ) -> None:
        super().__init__(max_side=max_side)
        if model_path is None:
            raise InceptionFerError(
                "the 'yunet' face detector needs model_path= (a YuNet .onnx such as "
                "face_detection_yunet_2023mar.onnx from the OpenCV model zoo); no package ships it"
            )
        path = Path(model_path)
        if not path.is_file():
            raise InceptionFerError(f"YuNet model file {path} does not exist")
        try:
            self.net = cv2.FaceDetectorYN.create(
                str(path), "", (320, 320), score_threshold, nms_threshold
            )
        except cv2.error as error:
            message = str(error).strip().splitlines()[-1]
            raise CheckpointError(f"cannot load YuNet model {path}: {message}") from None

    def _detect(self, image_bgr: np.ndarray) -> list[Face]:
        height, width = image_bgr.shape[:2]
        self.net.setInputSize((width, height))
        _, rows = self.net.detect(image_bgr)
        if rows is None:
            return []
        faces = []
        for row in np.asarray(rows, dtype=np.float32).reshape(-1, 15):
            # YuNet lists the person's right eye, left eye, nose, right and left mouth corners.
            landmarks = row[4:14].reshape(5, 2).copy()
            x, y, w, h = (float(v) for v in row[:4])
            faces.append(Face(x, y, w, h, float(row[14]), landmarks))
        return faces
