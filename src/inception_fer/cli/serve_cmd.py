"""``inception-fer serve``: the REST service and its web page, on uvicorn."""

from __future__ import annotations

import argparse

from ..errors import InceptionFerError
from ..faces import DEFAULT_DETECTOR, list_detectors

BACKENDS = ("torch", "onnx")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the REST API and a web page for photos and webcam",
        description="Load a model once and serve it over HTTP: a web page at /, the API at /v1 "
        "(predict, predict/batch, models), its docs at /docs, /healthz. Uploads stay in memory.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: all)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument("--model", default="default", help="shipped model name, checkpoint or run")
    parser.add_argument("--backend", default="torch", choices=BACKENDS, help="inference engine")
    parser.add_argument(
        "--detector", default=DEFAULT_DETECTOR, choices=list_detectors(), help="face detector"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument(
        "--max-upload-mb", type=float, default=20.0, help="largest request body, in MiB (413 over)"
    )
    parser.add_argument(
        "--max-megapixels",
        type=float,
        default=50.0,
        help="largest picture, in megapixels, refused from its header unread (413 over)",
    )
    parser.add_argument(
        "--timeout-s",
        type=float,
        default=30.0,
        help="longest a request may take, queueing included (408 for a slow upload, 503 else)",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow browser pages from ORIGIN (e.g. https://example.org, or *) to call the API; "
        "repeatable; CORS is off without it",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads for inference (default: every CPU for onnx, torch's choice for torch)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="uvicorn's log level (info logs every request)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    from ..inference.recognizer import EmotionRecognizer
    from ..serve import create_app

    for name in ("max_upload_mb", "max_megapixels", "timeout_s"):
        if getattr(args, name) <= 0:
            raise InceptionFerError(f"--{name.replace('_', '-')} must be positive")
    if args.threads is not None:
        if args.threads < 1:
            raise InceptionFerError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    recognizer = EmotionRecognizer(
        model=args.model,
        detector=args.detector,
        device=args.device,
        backend=args.backend,
        threads=args.threads,
    )
    app = create_app(
        recognizer,
        max_upload_bytes=round(args.max_upload_mb * 2**20),
        max_pixels=round(args.max_megapixels * 1e6),
        request_timeout_s=args.timeout_s,
        cors_origins=args.cors_origin or None,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
