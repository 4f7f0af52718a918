"""Emotions of the faces in real pictures: image decoding, face crops and ``EmotionRecognizer``."""

from __future__ import annotations

from .face_crop import DEFAULT_ALIGN, DEFAULT_MARGIN, crop_faces
from .image_input import DEFAULT_MAX_PIXELS, load_image
from .recognizer import EmotionRecognizer, FacePrediction, ImageResult

__all__ = [
    "DEFAULT_ALIGN",
    "DEFAULT_MARGIN",
    "DEFAULT_MAX_PIXELS",
    "EmotionRecognizer",
    "FacePrediction",
    "ImageResult",
    "crop_faces",
    "load_image",
]
