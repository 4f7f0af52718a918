"""The FER2013 challenge CSV: ``emotion,pixels,Usage`` with 48x48 gray values per row.

Columns are found by header name (any order, case-insensitive); without a ``Usage`` column every
row is Training. Row errors name the 1-based line number in the file.
"""

from __future__ import annotations

import csv
import warnings
from typing import NamedTuple, TextIO

import numpy as np

from ..errors import DataError
from .dataset import TEST, TRAIN, VAL, RawData
from .images import fit_size

CSV_SIDE = 48
CSV_PIXELS = CSV_SIDE * CSV_SIDE
USAGES: dict[str, int] = {"training": TRAIN, "publictest": VAL, "privatetest": TEST}
_CHUNK_ROWS = 1024


class _Pending(NamedTuple):
    """A row whose label and Usage are valid, its pixels not yet parsed."""

    line: int
    label: int
    tag: int
    pixels: str


def _pixel_problem(text: str) -> str:
    """Why one pixel string is not 2304 integers in 0..255 (used once the fast path fails)."""
    tokens = text.split()
    if len(tokens) != CSV_PIXELS:
        return f"has {len(tokens)} pixel values, expected {CSV_PIXELS} (48x48)"
    for token in tokens:
        try:
            value = int(token)
        except ValueError:
            return f"pixel value {token!r} is not an integer"
        if not 0 <= value <= 255:
            return f"pixel value {value} is outside 0..255"
    return ""


def _parse_pixels(texts: list[str]) -> np.ndarray | None:
    """All pixel strings as one (n, 2304) int array, or None if any string is malformed."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        try:
            values = np.fromstring(" ".join(texts), dtype=np.int32, sep=" ")
        except (ValueError, DeprecationWarning):
            return None
    if values.size != len(texts) * CSV_PIXELS:
        return None
    if values.size and (values.min() < 0 or values.max() > 255):
        return None
    return values.reshape(len(texts), CSV_PIXELS)


class _Reader:
    """Stream the CSV rows into arrays, raising or recording (``skip_bad``) each bad row."""

    def __init__(
        self, path: str, class_names: tuple[str, ...], image_size: int, skip_bad: bool
    ) -> None:
        self.path = path
        self.class_names = class_names
        self.image_size = image_size
        self.skip_bad = skip_bad
        self.pending: list[_Pending] = []
        self.images: list[np.ndarray] = []
        self.labels: list[int] = []
        self.tags: list[int] = []
        self.bad: list[str] = []
        self.n_resized = 0

    def bad_row(self, line: int, problem: str) -> None:
        """Raise for a bad row, or record it as 'path:line' when skipping bad rows."""
        if not self.skip_bad:
            raise DataError(f"{self.path}, line {line}: {problem}; pass skip_bad=True to skip it")
        self.bad.append(f"{self.path}:{line}")

    def flush(self) -> None:
        """Parse the pending pixel strings, diagnosing row by row only if the batch fails."""
        rows, self.pending = self.pending, []
        parsed = _parse_pixels([row.pixels for row in rows])
        if parsed is None:
            good = []
            for row in rows:
                problem = _pixel_problem(row.pixels)
                if problem:
                    self.bad_row(row.line, problem)
                else:
                    good.append(row)
            rows = good
            parsed = _parse_pixels([row.pixels for row in rows])
            assert parsed is not None  # every remaining row passed _pixel_problem
        images = parsed.astype(np.uint8).reshape(-1, CSV_SIDE, CSV_SIDE)
        if self.image_size != CSV_SIDE and len(images):
            images = np.stack([fit_size(image, self.image_size)[0] for image in images])
            self.n_resized += len(images)
        self.images.append(images)
        self.labels.extend(row.label for row in rows)
        self.tags.extend(row.tag for row in rows)

    def read(self) -> RawData:
        """Read the whole file."""
        try:
            with open(self.path, newline="", encoding="utf-8") as handle:
                self._read_rows(handle)
        except UnicodeDecodeError:
            raise DataError(f"{self.path} is not a UTF-8 text CSV file") from None
        except csv.Error as error:
            raise DataError(f"{self.path} is not a readable CSV file: {error}") from None
        self.flush()
        if not self.labels:
            raise DataError(f"{self.path} has no valid data rows")
        return RawData(
            images=np.ascontiguousarray(np.concatenate(self.images)),
            labels=np.asarray(self.labels, dtype=np.int64),
            tags=np.asarray(self.tags, dtype=np.int8),
            class_names=self.class_names,
            source="csv",
            bad_files=tuple(self.bad),
            n_resized=self.n_resized,
        )

    def _read_rows(self, handle: TextIO) -> None:
        reader = csv.reader(handle)
        header = [name.strip().lower() for name in next(reader, [])]
        if "emotion" not in header or "pixels" not in header:
            raise DataError(
                f"{self.path}, line 1: expected a header with columns emotion,pixels,Usage, "
                f"got {','.join(header)[:80]!r}"
            )
        emotion_col, pixels_col = header.index("emotion"), header.index("pixels")
        usage_col = header.index("usage") if "usage" in header else None
        for row in reader:
            if not row:
                continue
            line = reader.line_num
            if len(row) != len(header):
                self.bad_row(
                    line,
                    f"expected {len(header)} fields ({','.join(header)}), got {len(row)}"
                    " (truncated row?)",
                )
                continue
            problem, label, tag = self._check_row(row, emotion_col, usage_col)
            if problem:
                self.bad_row(line, problem)
                continue
            self.pending.append(_Pending(line, label, tag, row[pixels_col]))
            if len(self.pending) >= _CHUNK_ROWS:
                self.flush()

    def _check_row(
        self, row: list[str], emotion_col: int, usage_col: int | None
    ) -> tuple[str, int, int]:
        """(problem or '', label, split code) of a row's emotion and Usage fields."""
        text = row[emotion_col].strip()
        try:
            label = int(text)
        except ValueError:
            return f"emotion {text!r} is not an integer", 0, 0
        if not 0 <= label < len(self.class_names):
            return f"emotion label {label} is out of range 0..{len(self.class_names) - 1}", 0, 0
        if usage_col is None:
            return "", label, TRAIN
        usage = row[usage_col].strip()
        tag = USAGES.get(usage.lower())
        if tag is None:
            return f"unknown Usage {usage!r}; expected Training, PublicTest or PrivateTest", 0, 0
        return "", label, tag


def read_csv(path: str, class_names: tuple[str, ...], image_size: int, skip_bad: bool) -> RawData:
    """Read a FER2013-style CSV; labels index ``class_names`` (EMOTIONS unless the user chose)."""
    return _Reader(path, class_names, image_size, skip_bad).read()
