"""The REST service: ``create_app(recognizer)`` builds a FastAPI app around a loaded recognizer.

Endpoints: ``GET /`` (the web page), ``GET /docs`` (Swagger UI, served without a CDN),
``GET /healthz``, ``GET /v1/models``, ``POST /v1/predict`` (one picture: multipart ``file`` field,
or the raw bytes with Content-Type ``image/*`` or ``application/octet-stream``) and
``POST /v1/predict/batch`` (multipart, one ``files`` field per picture). Errors are JSON
``{"detail": "..."}`` with status 400 (malformed multipart), 408 (upload not received in time), 413
(upload, pixel count or file count over the limit), 415 (wrong Content-Type), 422 (not a decodable
picture, or a missing form field) or 503 (no answer within the request timeout; ``Retry-After``
set).

Inference is CPU-bound and torch already uses every core, so pictures are decoded and classified
one at a time on a single worker thread, never on the event loop; a request that times out while
still queued is dropped from the queue.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..inference.image_input import DEFAULT_MAX_PIXELS
from ..inference.recognizer import EmotionRecognizer
from .analysis import analyse, model_info
from .uploads import MULTIPART, Part, content_type, parse_multipart, read_body

DEFAULT_MAX_UPLOAD_BYTES = 20 * 2**20
"""Largest request body accepted (20 MiB: a phone photo, or a small batch of them)."""
DEFAULT_TIMEOUT_S = 30.0
"""Longest a request may take, from its first byte read to its answer (queueing included)."""
DEFAULT_MAX_BATCH_FILES = 16
"""Most pictures in one batch request."""

_OCTET = "application/octet-stream"
_PREDICT_HINT = (
    "multipart/form-data with the picture in a 'file' field, or the picture's bytes with "
    "Content-Type image/* (e.g. image/jpeg) or application/octet-stream"
)
_BATCH_HINT = "multipart/form-data with one 'files' field per picture"
_PAGE_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src 'self' blob: data:; media-src 'self' blob: mediastream:; connect-src 'self'"
)
_DOCS_ASSETS = "/docs-static"
_DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'"
)
_ANNOTATED = Query(
    False, description="add `annotated_png`: the picture with boxes and bars, a base64 PNG"
)
_BINARY = {"type": "string", "format": "binary"}
_PREDICT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            MULTIPART: {
                "schema": {"type": "object", "properties": {"file": _BINARY}, "required": ["file"]}
            },
            "image/*": {"schema": _BINARY},
            "application/octet-stream": {"schema": _BINARY},
        },
    }
}
_BATCH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            MULTIPART: {
                "schema": {
                    "type": "object",
                    "properties": {"files": {"type": "array", "items": _BINARY}},
                    "required": ["files"],
                }
            }
        },
    }
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "malformed multipart body"},
    408: {"description": "the upload was not received within the request timeout"},
    413: {"description": "upload, pixel count or batch size over the server's limit"},
    415: {"description": "unsupported Content-Type"},
    422: {"description": "not a decodable picture, or a missing form field"},
    503: {"description": "no answer within the request timeout (busy server); retry"},
}


def create_app(
    recognizer: EmotionRecognizer,
    *,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    request_timeout_s: float = DEFAULT_TIMEOUT_S,
    max_batch_files: int = DEFAULT_MAX_BATCH_FILES,
    cors_origins: list[str] | None = None,
) -> FastAPI:
    """The service around ``recognizer``; CORS is off unless ``cors_origins`` lists origins."""
    service = _Service(recognizer, max_upload_bytes, max_pixels, request_timeout_s)
    page = resources.files(__package__).joinpath("static/index.html").read_text("utf-8")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            service.executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="inception-fer",
        version=__version__,
        description="The emotion of every face in a picture.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    _add_docs(app)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type"],
        )

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": _PAGE_CSP})

    @app.get("/healthz", summary="Liveness check")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models", summary="The loaded model, the shipped models and the limits")
    async def models() -> dict[str, Any]:
        limits = {
            "max_upload_bytes": max_upload_bytes,
            "max_pixels": max_pixels,
            "request_timeout_s": request_timeout_s,
            "max_batch_files": max_batch_files,
        }
        return {**service.info, "limits": limits}

    @app.post(
        "/v1/predict",
        summary="The faces and emotions in one picture",
        openapi_extra=_PREDICT_BODY,
        responses=_ERRORS,
    )
    async def predict(request: Request, annotated: bool = _ANNOTATED) -> JSONResponse:
        start = time.perf_counter()
        media, boundary = content_type(request)
        if media != MULTIPART and not (media.startswith("image/") or media == _OCTET):
            raise HTTPException(415, _unsupported(media, _PREDICT_HINT))
        body = await service.read(request, start)
        filename = None
        if media == MULTIPART:
            part = _field(parse_multipart(body, boundary), "file")
            body, filename = part.data, part.filename
        result = await service.infer(body, annotated, start)
        result["timing_ms"]["total"] = _ms_since(start)
        return JSONResponse({"filename": filename, **result})

    @app.post(
        "/v1/predict/batch",
        summary="The faces and emotions in several pictures; a bad one gets an error entry",
        openapi_extra=_BATCH_BODY,
        responses=_ERRORS,
    )
    async def predict_batch(request: Request, annotated: bool = _ANNOTATED) -> JSONResponse:
        start = time.perf_counter()
        media, boundary = content_type(request)
        if media != MULTIPART:
            raise HTTPException(415, _unsupported(media, _BATCH_HINT))
        body = await service.read(request, start)
        parts = [part for part in parse_multipart(body, boundary) if part.name == "files"]
        if not parts:
            raise HTTPException(422, "the form has no 'files' field: add one per picture")
        if len(parts) > max_batch_files:
            raise HTTPException(
                413, f"{len(parts)} files is over this server's limit of {max_batch_files}"
            )
        results = [await service.infer_entry(part, annotated, start) for part in parts]
        return JSONResponse({"results": results, "timing_ms": {"total": _ms_since(start)}})

    return app


def _add_docs(app: FastAPI) -> None:
    """``GET /docs``: Swagger UI 5 from the ``fastapi-offline`` package's files, so it needs no
    network (FastAPI's default loads it from a CDN); its CSP lets the page reach this server
    only."""
    assets = StaticFiles(packages=[("fastapi_offline", "static")])
    app.mount(_DOCS_ASSETS, assets, name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{_DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{_DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{_DOCS_ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # no badge from validator.swagger.io
        )
        page.headers["Content-Security-Policy"] = _DOCS_CSP
        return page


class _Service:
    """The recognizer, its worker thread and the limits the endpoints share."""

    def __init__(
        self,
        recognizer: EmotionRecognizer,
        max_upload_bytes: int,
        max_pixels: int | None,
        timeout_s: float,
    ) -> None:
        self.recognizer = recognizer
        self.info = model_info(recognizer)
        self.max_upload_bytes, self.max_pixels, self.timeout_s = (
            max_upload_bytes,
            max_pixels,
            timeout_s,
        )
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")

    async def read(self, request: Request, start: float) -> bytes:
        """The request body in memory; 408 when it is not all received within the timeout."""
        try:
            return await asyncio.wait_for(
                read_body(request, self.max_upload_bytes), self._left(start)
            )
        except asyncio.TimeoutError:
            raise HTTPException(
                408, f"the upload was not received within the {self.timeout_s:g} s timeout"
            ) from None

    async def infer(self, data: bytes, annotated: bool, start: float) -> dict[str, Any]:
        """:func:`analyse` on the worker thread; 503 when it is not done before the timeout."""
        job = functools.partial(
            _queued, time.perf_counter(), self.recognizer, data, self.max_pixels, annotated
        )
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self.executor, job), self._left(start)
            )
        except asyncio.TimeoutError:
            raise HTTPException(
                503,
                f"no answer within the {self.timeout_s:g} s request timeout: the server is busy "
                "or the picture is slow to process; try again",
                headers={"Retry-After": "1"},
            ) from None

    async def infer_entry(self, part: Part, annotated: bool, start: float) -> dict[str, Any]:
        """One batch entry: the answer, or the error of a picture that cannot be used."""
        try:
            result = await self.infer(part.data, annotated, start)
        except HTTPException as error:
            if error.status_code not in (413, 422):
                raise
            status, detail = error.status_code, error.detail
            return {"filename": part.filename, "ok": False, "status": status, "error": detail}
        return {"filename": part.filename, "ok": True, **result}

    def _left(self, start: float) -> float:
        return max(0.0, self.timeout_s - (time.perf_counter() - start))


def _queued(
    submitted: float,
    recognizer: EmotionRecognizer,
    data: bytes,
    max_pixels: int | None,
    annotated: bool,
) -> dict[str, Any]:
    """:func:`analyse`, its answer's ``timing_ms`` with the time the job waited for the worker."""
    queued = _ms_since(submitted)
    result = analyse(recognizer, data, max_pixels=max_pixels, annotated=annotated)
    result["timing_ms"]["queue"] = queued
    return result


def _field(parts: list[Part], name: str) -> Part:
    for part in parts:
        if part.name == name:
            return part
    found = ", ".join(repr(p.name) for p in parts) or "none"
    raise HTTPException(422, f"the form has no {name!r} field (fields: {found})")


def _unsupported(media: str, hint: str) -> str:
    return f"unsupported Content-Type {media or '(none)'!r}: send {hint}"


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)
