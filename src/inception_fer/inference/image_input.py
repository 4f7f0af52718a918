"""Any picture a user has (a path, bytes, a PIL image, a numpy array) as one HxWx3 uint8 BGR array.

BGR is OpenCV's channel order, the one the face detectors take. Files and bytes are decoded with
Pillow: the EXIF orientation is applied (a phone photo comes out the right way up), CMYK, palette,
16-bit and gray images become 8-bit colour, and transparent pixels are composited on white (a
cut-out portrait keeps its face; dropping alpha would expose whatever colour the transparent
pixels happen to store, often black). Before decoding, the size in the file's header is checked
against a pixel limit, so a decompression bomb never allocates its pixels.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image, ImageOps

from ..errors import DataError

ImageSource = str | os.PathLike[str] | bytes | bytearray | memoryview | Image.Image | np.ndarray
"""What :func:`load_image` accepts."""

ColorOrder = Literal["rgb", "bgr"]

DEFAULT_MAX_PIXELS = 50_000_000
"""Largest image decoded by default (50 megapixels, e.g. 8660x5773; a 108 MP phone photo is not)."""

_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


def describe_source(source: object) -> str:
    """A short name for ``source`` in messages: the path, or a description of the object."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{memoryview(source).nbytes} bytes>"
    if isinstance(source, Image.Image):
        return f"<PIL image {source.width}x{source.height} {source.mode}>"
    if isinstance(source, np.ndarray):
        return f"<array {'x'.join(map(str, source.shape))} {source.dtype}>"
    return f"<{type(source).__name__}>"


def load_image(
    source: ImageSource,
    *,
    color_order: ColorOrder = "rgb",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """``source`` as a C-contiguous HxWx3 uint8 array in **BGR** order (OpenCV's convention).

    ``source`` is an image file's path, its encoded bytes, a PIL image, or a numpy array: HxW gray,
    HxWx1, HxWx3 colour or HxWx4 colour with alpha, of dtype uint8, uint16 (scaled to 8 bits) or
    float with values in [0, 1]. A 3- or 4-channel array is taken as RGB(A) unless ``color_order``
    is ``"bgr"``; it applies to arrays only (files and PIL images know their own order). A BGR
    uint8 array is returned as is, not copied. ``max_pixels`` (None: no limit of ours; Pillow's own
    decompression-bomb limit of about 179 MP still applies to files) caps width x height of files,
    bytes and PIL images. Any unreadable input raises a one-line :class:`DataError` naming it.
    """
    if color_order not in ("rgb", "bgr"):
        raise DataError(f"color_order must be 'rgb' or 'bgr', got {color_order!r}")
    name = describe_source(source)
    if isinstance(source, np.ndarray):
        return _array_to_bgr(source, color_order == "rgb", name)
    if isinstance(source, Image.Image):
        return _pil_to_bgr(source, max_pixels, name)
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not memoryview(source).nbytes:
            raise DataError("cannot read an image from empty bytes")
        return _decode(io.BytesIO(source), max_pixels, name)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            raise DataError(f"{path} is a folder, not an image file")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise DataError(f"image file not found: {path}") from None
        except OSError as error:
            raise DataError(f"cannot read image file {path}: {error.strerror or error}") from None
        if not data:
            raise DataError(f"image file {path} is empty")
        return _decode(io.BytesIO(data), max_pixels, f"image file {path}")
    raise DataError(
        f"cannot read an image from a {type(source).__name__}; "
        "pass a path, bytes, a PIL image or a numpy array"
    )


def _decode(stream: io.BytesIO, max_pixels: int | None, what: str) -> np.ndarray:
    """Decode an encoded image with Pillow; the pixel limit is checked on the header first."""
    try:
        image = Image.open(stream)
    except Image.DecompressionBombError:
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6
        raise DataError(
            f"{what} is over Pillow's decompression-bomb limit of {limit:.0f} MP; not decoded"
        ) from None
    except Exception:  # Pillow's identify step raises many kinds on junk
        raise DataError(f"{what} is not an image Pillow can read") from None
    with image:
        return _pil_to_bgr(image, max_pixels, what)


def _pil_to_bgr(image: Image.Image, max_pixels: int | None, what: str) -> np.ndarray:
    width, height = image.size
    if max_pixels is not None and width * height > max_pixels:
        raise DataError(
            f"{what} is {width}x{height} = {width * height / 1e6:.0f} MP, over the "
            f"{max_pixels / 1e6:g} MP limit (max_pixels)"
        )
    try:
        image = ImageOps.exif_transpose(image)
        array = _pil_to_array(image)
    except Exception as error:  # decoding happens here; corrupt data raises many kinds
        raise DataError(f"{what} is truncated or corrupt ({error})") from None
    return _array_to_bgr(array, True, what)


def _pil_to_array(image: Image.Image) -> np.ndarray:
    """The decoded pixels: gray, RGB or RGBA, 8- or 16-bit, as Pillow holds them."""
    if image.mode in _SIXTEEN_BIT_MODES:
        return np.clip(np.asarray(image), 0, 65535).astype(np.uint16)
    if image.mode in ("L", "RGB", "RGBA", "F"):
        return np.asarray(image)
    if image.mode == "1":
        return np.asarray(image.convert("L"))
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        return np.asarray(image.convert("RGBA"))
    return np.asarray(image.convert("RGB"))  # CMYK, YCbCr, LAB, HSV, palette, ...


def _array_to_bgr(array: np.ndarray, rgb: bool, what: str) -> np.ndarray:
    """Check and convert an image array (any supported depth and channel count) to uint8 BGR."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise DataError(
            f"{what}: an image array must be HxW, HxWx1, HxWx3 or HxWx4, got shape {array.shape}"
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise DataError(f"{what} is empty (shape {array.shape})")
    array = _to_uint8(array, what)
    if array.ndim == 2:
        return cv2.cvtColor(array, cv2.COLOR_GRAY2BGR)
    if array.shape[2] == 4:
        array = _composite_on_white(array)
    if rgb:
        array = array[:, :, ::-1]
    return np.ascontiguousarray(array)


def _to_uint8(array: np.ndarray, what: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return (array >> 8).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        low, high = float(np.min(array)), float(np.max(array))
        if not (low >= 0.0 and high <= 1.0):  # also False for NaN
            raise DataError(
                f"{what}: float pixel values must be in [0, 1], got [{low:g}, {high:g}] "
                "(pass uint8 for 0-255 values)"
            )
        return np.round(array * 255.0).astype(np.uint8)
    raise DataError(
        f"{what}: unsupported pixel dtype {array.dtype}; use uint8, uint16 or float in [0, 1]"
    )


def _composite_on_white(array: np.ndarray) -> np.ndarray:
    """An (H, W, 4) uint8 colour + alpha image over a white background, (H, W, 3) uint8."""
    colour = array[:, :, :3].astype(np.uint16)
    alpha = array[:, :, 3:].astype(np.uint16)
    blended = (colour * alpha + 255 * (255 - alpha) + 127) // 255
    return blended.astype(np.uint8)
