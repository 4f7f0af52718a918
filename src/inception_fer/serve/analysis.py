"""One uploaded picture's answer: decoded under a pixel limit, its faces found and classified,
optionally annotated; and what the service says about its model. Runs on the inference thread."""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import cv2
from fastapi import HTTPException
from PIL import Image

from ..errors import InceptionFerError
from ..inference.annotate import annotate
from ..inference.image_input import describe_source, load_image
from ..inference.recognizer import EmotionRecognizer
from ..pretrained import DEFAULT_MODEL, list_pretrained


def analyse(
    recognizer: EmotionRecognizer, data: bytes, *, max_pixels: int | None, annotated: bool
) -> dict[str, Any]:
    """The picture's size, its faces (box, score, emotion, probabilities) and the time taken.

    ``annotated`` adds ``annotated_png``: the picture with boxes and bars, a base64 PNG. A picture
    over ``max_pixels`` is refused from its header, unread (413); one that cannot be decoded
    gives 422 with the decoder's message.
    """
    start = time.perf_counter()
    check_pixels(data, max_pixels)
    try:
        image = load_image(data, max_pixels=max_pixels)
    except InceptionFerError as error:
        upload = f"the upload ({len(data):,} bytes)"
        raise HTTPException(422, str(error).replace(describe_source(data), upload, 1)) from None
    decoded = time.perf_counter()
    try:
        faces = recognizer.predict_bgr(image)
    except InceptionFerError as error:
        raise HTTPException(422, str(error)) from None
    done = time.perf_counter()
    height, width = image.shape[:2]
    result: dict[str, Any] = {
        "image": {"width": width, "height": height},
        "faces": [face.to_dict() for face in faces],
        "timing_ms": {"decode": _ms(decoded - start), "inference": _ms(done - decoded)},
    }
    if annotated:
        ok, png = cv2.imencode(".png", annotate(image, faces))
        if not ok:
            raise HTTPException(500, "could not encode the annotated picture as PNG")
        result["annotated_png"] = base64.b64encode(png.tobytes()).decode("ascii")
        result["timing_ms"]["annotate"] = _ms(time.perf_counter() - done)
    return result


def check_pixels(data: bytes, max_pixels: int | None) -> None:
    """413 when the image header gives more than ``max_pixels`` pixels (nothing decoded); data that
    is no image passes, for the decoder to name the problem."""
    if max_pixels is None:
        return
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Image.DecompressionBombError:
        raise HTTPException(413, "image is over Pillow's decompression-bomb limit") from None
    except Exception:  # not an image: load_image gives the decoder's message
        return
    if width * height > max_pixels:
        raise HTTPException(
            413,
            f"image is {width}x{height} = {width * height / 1e6:.1f} MP, over this server's "
            f"limit of {max_pixels / 1e6:g} MP",
        )


def model_info(recognizer: EmotionRecognizer) -> dict[str, Any]:
    """The loaded model (architecture, classes, input size, backend, detector) and the shipped
    model names."""
    return {
        "model": {
            "name": recognizer.name,
            "network": recognizer.meta.model_name,
            "classes": list(recognizer.classes),
            "input_size": recognizer.input_size,
            "backend": recognizer.backend,
            "detector": type(recognizer.detector).__name__.removesuffix("Detector").lower(),
            "device": str(recognizer.device),
            "tta": recognizer.tta,
        },
        "pretrained": {"default": DEFAULT_MODEL, "shipped": list_pretrained()},
    }


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)
