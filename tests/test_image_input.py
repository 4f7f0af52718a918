"""load_image: every kind of input becomes the same BGR uint8 array; bad input is one clear line."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inception_fer.errors import DataError
from inception_fer.inference import load_image
from inception_fer.inference.image_input import ImageSource


@pytest.fixture
def rgb() -> np.ndarray:
    """A 40x60 RGB picture with no symmetry: a colour gradient and a red top-left block."""
    y, x = np.mgrid[0:40, 0:60]
    image = np.stack([x * 4, y * 6, 255 - x * 4], axis=-1).astype(np.uint8)
    image[:10, :15] = (255, 0, 0)
    return image


def _png(tmp_path: Path, image: Image.Image, name: str = "picture.png") -> Path:
    path = tmp_path / name
    image.save(path)
    return path


def test_every_source_type_gives_the_same_bgr_array(tmp_path: Path, rgb: np.ndarray) -> None:
    path = _png(tmp_path, Image.fromarray(rgb))
    data = path.read_bytes()
    expected = rgb[:, :, ::-1]
    with Image.open(path) as opened:
        sources: list[ImageSource] = [
            path,
            str(path),
            data,
            bytearray(data),
            memoryview(data),
            opened,
            Image.fromarray(rgb),
            rgb,
        ]
        for source in sources:
            image = load_image(source)
            assert image.dtype == np.uint8 and image.shape == (40, 60, 3)
            assert image.flags.c_contiguous
            assert np.array_equal(image, expected), type(source)
    bgr = np.ascontiguousarray(expected)
    assert load_image(bgr, color_order="bgr") is bgr  # already right: no copy
    assert np.array_equal(load_image(np.dstack([rgb, np.full((40, 60), 255, np.uint8)])), expected)


def test_jpeg_decodes_close_to_the_original(tmp_path: Path, rgb: np.ndarray) -> None:
    path = tmp_path / "picture.jpg"
    Image.fromarray(rgb).save(path, quality=95)
    error = np.abs(load_image(path).astype(int) - rgb[:, :, ::-1].astype(int))
    assert error.mean() < 4


def test_gray_and_one_bit_images_become_three_equal_channels(tmp_path: Path) -> None:
    gray = np.arange(48 * 48, dtype=np.uint32).reshape(48, 48) % 256
    gray = gray.astype(np.uint8)
    for source in (_png(tmp_path, Image.fromarray(gray)), gray, gray[:, :, None]):
        image = load_image(source)
        assert image.shape == (48, 48, 3)
        assert all(np.array_equal(image[:, :, c], gray) for c in range(3))
    bits = Image.fromarray(gray > 127).convert("1")
    image = load_image(_png(tmp_path, bits, "bits.png"))
    assert set(np.unique(image).tolist()) == {0, 255}


def test_sixteen_bit_png_and_arrays_keep_their_top_eight_bits(tmp_path: Path) -> None:
    deep = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)
    path = _png(tmp_path, Image.fromarray(deep), "deep.png")
    with Image.open(path) as check:
        assert check.mode.startswith("I")  # really a 16-bit file
    for source in (path, deep):
        image = load_image(source)
        assert np.array_equal(image[:, :, 0], (deep >> 8).astype(np.uint8))
    assert image.max() == 255  # not clipped at 255 of 65535
    rgb16 = np.full((4, 4, 3), (65535, 32768, 0), dtype=np.uint16)
    assert load_image(rgb16)[0, 0].tolist() == [0, 128, 255]


def test_float_arrays_in_zero_one(rgb: np.ndarray) -> None:
    image = load_image(rgb.astype(np.float32) / 255)
    assert np.array_equal(image, rgb[:, :, ::-1])
    with pytest.raises(DataError, match=r"float pixel values must be in \[0, 1\], got \[0, 255\]"):
        load_image(rgb.astype(np.float64))
    with pytest.raises(DataError, match="float pixel values"):
        load_image(np.full((4, 4), np.nan, dtype=np.float32))


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path)  # no cyan, full magenta+yellow: red
    with Image.open(path) as check:
        assert check.mode == "CMYK"
    b, g, r = load_image(path)[8, 8].tolist()
    assert r > 240 and g < 15 and b < 15


def test_transparency_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)  # black everywhere
    rgba[:, 0, 3] = 255  # opaque black
    rgba[:, 1, 3] = 0  # transparent: white
    rgba[:, 2, 3] = 128  # half: mid gray
    for source in (rgba, _png(tmp_path, Image.fromarray(rgba, "RGBA"))):
        image = load_image(source)
        assert image[0, :, 0].tolist() == [0, 255, 127]
    gray_alpha = Image.fromarray(rgba[:, :, [0, 3]], "LA")
    assert load_image(_png(tmp_path, gray_alpha, "la.png"))[0, :, 1].tolist() == [0, 255, 127]


def test_palette_gif_with_and_without_transparency(tmp_path: Path) -> None:
    palette = Image.new("P", (4, 4))
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putpixel((3, 3), 1)
    path = tmp_path / "palette.gif"
    palette.save(path)
    image = load_image(path)
    assert image[0, 0].tolist() == [0, 0, 255] and image[3, 3].tolist() == [255, 0, 0]
    palette.save(path, transparency=1)  # the blue entry is transparent
    assert load_image(path)[3, 3].tolist() == [255, 255, 255]


def test_exif_orientation_is_applied(tmp_path: Path, rgb: np.ndarray) -> None:
    upright = Image.fromarray(rgb)
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # as a phone held sideways stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    stored.save(path, exif=exif, quality=95)
    image = load_image(path)
    assert image.shape == (40, 60, 3)  # landscape again, not the stored 60x40 portrait
    b, g, r = image[:10, :15].reshape(-1, 3).mean(axis=0)  # the red block is back top-left
    assert r > 200 and g < 60 and b < 60
    with Image.open(path) as opened:
        assert np.array_equal(load_image(opened), image)  # a PIL image gets the same treatment


def test_a_one_pixel_image_is_fine(tmp_path: Path) -> None:
    path = _png(tmp_path, Image.new("RGB", (1, 1), (10, 20, 30)), "dot.png")
    assert load_image(path).tolist() == [[[30, 20, 10]]]


def _png_header_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height (pixel data is for 8x8: never decoded)."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_pixel_limit_is_checked_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_claiming(10_000, 6_000))
    # decoding would fail as truncated: the limit message proves the check came first
    with pytest.raises(DataError, match=r"bomb\.png is 10000x6000 = 60 MP, over the 50 MP limit"):
        load_image(path)
    with pytest.raises(DataError, match="is truncated or corrupt"):
        load_image(path, max_pixels=None)
    with pytest.raises(DataError, match="over Pillow's decompression-bomb limit"):
        load_image(_png_header_claiming(20_000, 20_000), max_pixels=None)
    small = Image.new("RGB", (100, 100))
    with pytest.raises(DataError, match=r"100x100 = 0 MP, over the 0\.005 MP limit"):
        load_image(small, max_pixels=5000)
    assert load_image(small, max_pixels=10_000).shape == (100, 100, 3)


def _bad_sources(tmp_path: Path) -> dict[str, tuple[object, str]]:
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n")
    empty = tmp_path / "empty.png"
    empty.touch()
    noise = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="JPEG")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return {
        "text": (text, r"image file .*notes\.txt is not an image Pillow can read"),
        "truncated": (truncated, r"image file .*cut\.jpg is truncated or corrupt"),
        "empty file": (empty, r"image file .*empty\.png is empty"),
        "missing": (tmp_path / "gone.jpg", r"image file not found: .*gone\.jpg"),
        "folder": (tmp_path, "is a folder, not an image file"),
        "empty bytes": (b"", "empty bytes"),
        "junk bytes": (b"GIF89a junk", r"<11 bytes> is not an image"),
        "int64": (np.zeros((4, 4), np.int64), r"unsupported pixel dtype int64; use uint8"),
        "two channels": (np.zeros((4, 4, 2), np.uint8), r"must be HxW.*got shape \(4, 4, 2\)"),
        "1-d": (np.zeros(16, np.uint8), r"<array 16 uint8>.*got shape \(16,\)"),
        "no pixels": (np.zeros((0, 5, 3), np.uint8), r"is empty \(shape \(0, 5, 3\)\)"),
        "other type": (42, "cannot read an image from a int"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "text",
        "truncated",
        "empty file",
        "missing",
        "folder",
        "empty bytes",
        "junk bytes",
        "int64",
        "two channels",
        "1-d",
        "no pixels",
        "other type",
    ],
)
def test_bad_input_is_a_one_line_data_error(tmp_path: Path, case: str) -> None:
    source, message = _bad_sources(tmp_path)[case]
    with pytest.raises(DataError, match=message) as raised:
        load_image(source)  # type: ignore[arg-type]
    assert "\n" not in str(raised.value)


def test_color_order_is_checked(rgb: np.ndarray) -> None:
    with pytest.raises(DataError, match="color_order must be 'rgb' or 'bgr', got 'RGB'"):
        load_image(rgb, color_order="RGB")  # type: ignore[arg-type]
