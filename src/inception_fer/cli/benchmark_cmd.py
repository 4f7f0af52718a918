"""``inception-fer benchmark``: one table of trained models' size, cost, accuracy and speed."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..atomic import atomic_write_text
from ..errors import InceptionFerError
from ..evaluation.model_table import markdown_table, model_row
from ..evaluation.tta import TTA_MODES
from ..pretrained import list_pretrained


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "benchmark",
        help="table of trained models: parameters, multiply-adds, accuracy, CPU speed",
        description="Measure trained models (the shipped ones by default) and print a Markdown "
        "table: parameters, multiply-adds per image, PublicTest accuracy (with --data), CPU "
        "latency at batch 1 and throughput at --batch-size.",
    )
    parser.add_argument(
        "models", nargs="*", help="shipped model names, checkpoints or run folders (default: all "
        "shipped models)",
    )  # fmt: skip
    parser.add_argument("--data", help="FER2013 (any form) to score PublicTest accuracy on")
    parser.add_argument(
        "--tta", default="none,flip,shift", help="comma-separated TTA modes for accuracy"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--batch-size", type=int, default=256, help="throughput batch size")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per speed measurement")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    modes = tuple(m.strip() for m in args.tta.split(",") if m.strip())
    unknown = [m for m in modes if m not in TTA_MODES]
    if unknown or not modes:
        raise InceptionFerError(f"unknown TTA mode(s) {unknown}; valid: {', '.join(TTA_MODES)}")
    if args.threads < 1 or args.batch_size < 1:
        raise InceptionFerError("--threads and --batch-size must be at least 1")
    torch.set_num_threads(args.threads)
    specs = args.models or list_pretrained()
    rows = [model_row(spec, args.data, modes, args.batch_size, args.seconds) for spec in specs]
    print(markdown_table(rows, modes, args.threads))
    if args.json:
        figures = {"threads": args.threads, "torch": torch.__version__, "data": args.data,
                   "models": [r.to_dict() for r in rows]}  # fmt: skip
        atomic_write_text(args.json, json.dumps(figures, indent=1))
    return 0
