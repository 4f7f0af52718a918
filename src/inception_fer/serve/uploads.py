"""Request bodies read into memory under a size limit, and multipart forms parsed in memory.

Starlette's own form parser spools every file part over 1 MB to a temporary file on disk; uploads
here never touch the disk: the body is read chunk by chunk into memory, refused (413) as soon as it
passes the limit (or at once when its Content-Length says it will), and a multipart body is split
into its parts with ``python_multipart``'s streaming parser, each part's bytes kept in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request
from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

MULTIPART = "multipart/form-data"


@dataclass(frozen=True)
class Part:
    """One part of a multipart form: its field name, the file name the client gave, its bytes."""

    name: str
    filename: str | None
    data: bytes


def content_type(request: Request) -> tuple[str, bytes | None]:
    """The request's media type, lower case (``""`` when absent), and its multipart boundary."""
    media, options = parse_options_header(request.headers.get("content-type", ""))
    return media.decode("latin-1").lower(), options.get(b"boundary")


async def read_body(request: Request, limit: int) -> bytes:
    """The whole request body, at most ``limit`` bytes; 413 before reading when Content-Length is
    over the limit, and 413 as soon as a body sent without one (chunked) passes it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"upload of {int(declared):,} bytes is over {_limit_text(limit)}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"upload is over {_limit_text(limit)}")
    return bytes(body)


def _limit_text(limit: int) -> str:
    return f"this server's limit of {limit:,} bytes ({limit / 2**20:.3g} MiB)"


def parse_multipart(body: bytes, boundary: bytes | None) -> list[Part]:
    """The parts of a ``multipart/form-data`` body, in order; 400 when it is malformed."""
    if not boundary:
        raise HTTPException(400, "multipart/form-data body without a boundary in its Content-Type")
    collector = _PartCollector()
    parser = MultipartParser(boundary, collector.callbacks())
    try:
        parser.write(body)
    except MultipartParseError as error:
        raise HTTPException(400, f"malformed multipart/form-data body: {error}") from None
    if not collector.ended:
        raise HTTPException(400, "multipart/form-data body ends before its closing boundary")
    return collector.parts


class _PartCollector:
    """Callbacks for ``MultipartParser`` that gather each part's headers and bytes in memory."""

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.ended = False
        self._headers: dict[str, str] = {}
        self._field = bytearray()
        self._value = bytearray()
        self._data = bytearray()

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_part_data": lambda data, start, end: self._data.extend(data[start:end]),
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._headers.clear()
        self._data.clear()

    def _header_end(self) -> None:
        self._headers[self._field.decode("latin-1").lower()] = self._value.decode(
            "utf-8", "replace"
        )
        self._field.clear()
        self._value.clear()

    def _part_end(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", ""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        decoded = None if filename is None else filename.decode("utf-8", "replace")
        self.parts.append(Part(name, decoded, bytes(self._data)))

    def _end(self) -> None:
        self.ended = True
