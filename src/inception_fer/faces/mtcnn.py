"""The MTCNN face detector: an image pyramid through PNet, then RNet and ONet on the candidates.

A PyTorch port of the cascade of Zhang et al. (2016) with the weights of the MIT-licensed ``mtcnn``
wheel (no TensorFlow). Boxes are (x1, y1, x2, y2) float arrays in detection-image pixels.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import torch

from ..errors import InceptionFerError
from .detector import Face, FaceDetector, register_detector
from .mtcnn_nets import ONet, PNet, RNet, load_keras_weights
from .mtcnn_weights import NETWORKS, read_weights, weights_dir


@register_detector("mtcnn")
class MTCNNDetector(FaceDetector):
    """MTCNN (P-, R- and O-Net) with five landmarks per face.

    ``min_face_size`` is the smallest face side searched for, in pixels of the image after the
    downscale to ``max_side``; ``thresholds`` are the three networks' face-probability cut-offs.
    ``weights_dir`` overrides the folder of ``pnet.lz4``, ``rnet.lz4`` and ``onet.lz4``
    (default: the installed ``mtcnn`` package's).
    """

    def __init__(
        self,
        min_face_size: int = 24,
        thresholds: tuple[float, float, float] = (0.7, 0.7, 0.9),
        scale_factor: float = 0.709,
        max_side: int = 640,
        weights_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(max_side=max_side)
        if min_face_size < 12:
            raise InceptionFerError(
                f"min_face_size must be at least 12 pixels, got {min_face_size}"
            )
        if not 0.1 <= scale_factor <= 0.9:
            raise InceptionFerError(f"scale_factor must be in [0.1, 0.9], got {scale_factor}")
        self.min_face_size = min_face_size
        self.thresholds = thresholds
        self.scale_factor = scale_factor
        folder = _weights_folder(weights_dir)
        self.pnet = load_keras_weights(PNet(), read_weights(folder / "pnet.lz4"))
        self.rnet = load_keras_weights(RNet(), read_weights(folder / "rnet.lz4"))
        self.onet = load_keras_weights(ONet(), read_weights(folder / "onet.lz4"))

    def _detect(self, image_bgr: np.ndarray) -> list[Face]:
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        with torch.inference_mode():
            boxes = self._propose(rgb)
            if len(boxes):
                boxes = self._refine(rgb, boxes)
            if not len(boxes):
                return []
            boxes, landmarks = self._output(rgb, boxes)
        return [
            Face(float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1]), float(b[4]), lm)
            for b, lm in zip(boxes, landmarks, strict=True)
        ]

    def _propose(self, rgb: np.ndarray) -> np.ndarray:
        """PNet over the pyramid: squared candidate boxes (N, 5) with their scores."""
        height, width = rgb.shape[:2]
        scale = 12 / self.min_face_size
        found = []
        level = rgb
        while min(height, width) * scale >= 12:
            size = (math.ceil(width * scale), math.ceil(height * scale))
            # each level from the one before: area averaging on a smaller source, 8x faster
            level = cv2.resize(level, size, interpolation=cv2.INTER_AREA)
            reg, prob = self.pnet(_to_tensor(level[None]))
            ys, xs = np.nonzero(prob[0].numpy() > self.thresholds[0])
            if len(ys):
                sx, sy = size[0] / width, size[1] / height
                cells = np.stack(
                    [xs * 2 / sx, ys * 2 / sy, (xs * 2 + 12) / sx, (ys * 2 + 12) / sy], 1
                )
                scored = np.concatenate([cells, prob[0].numpy()[ys, xs, None]], axis=1)
                offsets = reg[0].numpy()[:, ys, xs].T
                keep = nms(scored, 0.5)
                found.append(np.concatenate([scored[keep], offsets[keep]], axis=1))
            scale *= self.scale_factor
        if not found:
            return np.empty((0, 5), dtype=np.float32)
        candidates = np.concatenate(found)
        candidates = candidates[nms(candidates, 0.7)]
        return _square(_regress(candidates[:, :5], candidates[:, 5:]))

    def _refine(self, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """RNet on 24x24 crops: the surviving boxes, regressed and squared."""
        reg, prob = self.rnet(_to_tensor(_crops(rgb, boxes, 24)))
        keep = prob.numpy() > self.thresholds[1]
        boxes = np.concatenate([boxes[keep, :4], prob.numpy()[keep, None]], axis=1)
        offsets = reg.numpy()[keep]
        picked = nms(boxes, 0.7)
        return _square(_regress(boxes[picked], offsets[picked]))

    def _output(self, rgb: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """ONet on 48x48 crops: final boxes (N, 5) and each face's (5, 2) landmarks."""
        reg, points, prob = self.onet(_to_tensor(_crops(rgb, boxes, 48)))
        keep = prob.numpy() > self.thresholds[2]
        boxes = np.concatenate([boxes[keep, :4], prob.numpy()[keep, None]], axis=1)
        points = points.numpy()[keep]
        size = (boxes[:, 2:4] - boxes[:, 0:2])[:, None, :]
        landmarks = boxes[:, None, 0:2] + np.stack([points[:, :5], points[:, 5:]], axis=2) * size
        boxes = _regress(boxes, reg.numpy()[keep])
        picked = nms(boxes, 0.7, mode="min")
        return boxes[picked], [landmarks[i].astype(np.float32) for i in picked]


def nms(boxes: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression on (N, >=5) rows of x1, y1, x2, y2, score: kept indices.

    ``mode="min"`` divides the overlap by the smaller box's area instead of the union's.
    """
    x1, y1, x2, y2, scores = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3], boxes[:, 4]
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        width = np.maximum(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0.0)
        height = np.maximum(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0.0)
        inter = width * height
        if mode == "min":
            denominator = np.minimum(areas[best], areas[rest])
        else:
            denominator = areas[best] + areas[rest] - inter
        order = rest[inter <= threshold * np.maximum(denominator, 1e-9)]
    return np.asarray(keep, dtype=np.int64)


def _weights_folder(folder: str | os.PathLike[str] | None) -> Path:
    if folder is None:
        return weights_dir()
    path = Path(folder)
    missing = [f"{net}.lz4" for net in NETWORKS if not (path / f"{net}.lz4").is_file()]
    if missing:
        raise InceptionFerError(f"MTCNN weights folder {path} lacks {', '.join(missing)}")
    return path


def _to_tensor(batch_rgb: np.ndarray) -> torch.Tensor:
    """NHWC uint8 RGB -> NCHW float scaled as MTCNN was trained."""
    tensor = torch.from_numpy(np.ascontiguousarray(batch_rgb)).permute(0, 3, 1, 2).float()
    return (tensor - 127.5) / 128.0


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Move each box's corners by its offsets times its width and height."""
    result = boxes.copy()
    size = boxes[:, 2:4] - boxes[:, 0:2]
    result[:, 0:4] += offsets * np.concatenate([size, size], axis=1)
    return result


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square on its longer side, about the same centre."""
    result = boxes.copy()
    size = boxes[:, 2:4] - boxes[:, 0:2]
    side = size.max(axis=1, keepdims=True)
    result[:, 0:2] = boxes[:, 0:2] + (size - side) / 2
    result[:, 2:4] = result[:, 0:2] + side
    return result


def _crops(rgb: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Each box's pixels (zeros outside the image) resized to size x size: (N, size, size, 3)."""
    height, width = rgb.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), dtype=np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(np.rint(boxes[:, :4]).astype(np.int64)):
        bw, bh = max(int(x2 - x1), 1), max(int(y2 - y1), 1)
        patch = np.zeros((bh, bw, 3), dtype=np.uint8)
        sx1, sy1 = max(x1, 0), max(y1, 0)
        sx2, sy2 = min(x2, width), min(y2, height)
        if sx2 > sx1 and sy2 > sy1:
            patch[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = rgb[sy1:sy2, sx1:sx2]
        method = cv2.INTER_AREA if bw > size else cv2.INTER_LINEAR
        out[i] = cv2.resize(patch, (size, size), interpolation=method)
    return out
