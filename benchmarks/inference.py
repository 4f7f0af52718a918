"""Inference speed on the CPU: PyTorch against ONNX Runtime, faces/s in batches and ms per face.

Usage: ``python benchmarks/inference.py [--models default inception_fer_s ...] [--threads 2]
[--batch-size 256] [--batch-runs 20] [--latency-runs 500] [--int8] [--int8-full-range]
[--calibration DATA] [--json OUT]``.

Each model runs through the backends of ``EmotionRecognizer`` (``inception_fer.inference.
backends``), timed as ``predict_faces`` runs them: gray uint8 48x48 face crops in, probabilities
out (no TTA), normalisation and conversions included, face detection not. PyTorch runs the eval
network under ``no_grad`` in channels-last memory; ONNX Runtime runs the exported graph (BatchNorm
folded, normalisation inside) with the CPU provider and all graph optimisations, a batch
spread over ``--threads`` single-threaded sessions (``OnnxBackend``). Throughput is
``batch-size`` divided by the median of ``batch-runs`` batches; latency the median of
``latency-runs`` single faces; both after warm-up runs. A model is a shipped name, a checkpoint or
a registered network (untrained weights: the speed is the same).

``--int8`` adds the model quantised to int8 (``inception_fer.export.quantize``), calibrated on 512
random train faces of ``--calibration`` (default: the shared FER2013 beside the repository, where
present), with 7-bit weights (right on every CPU) or, with ``--int8-full-range``, 8-bit ones (for
CPUs with VNNI only). With a dataset, given or found, each backend's accuracy on its val split
(FER2013's PublicTest, 3,589 faces) is printed too.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from _report import aligned_table, cpu_model
from inception_fer.atomic import atomic_write_text
from inception_fer.classes import EMOTIONS
from inception_fer.data import FerData, load_fer
from inception_fer.export import calibration_split, onnx_model_bytes, quantize_onnx
from inception_fer.inference.backends import Backend, OnnxBackend, TorchBackend
from inception_fer.inference.recognizer import resolve_checkpoint
from inception_fer.models import is_model
from inception_fer.pretrained import list_pretrained
from inception_fer.training.checkpoint import Checkpoint, CheckpointMeta

SHARED_FER2013 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013"
BACKEND_LABELS = {"torch": "PyTorch", "onnx": "ONNX Runtime", "int8": "ONNX Runtime int8"}
TARGET_FACES_PER_S = 3000.0
TARGET_MS = 1.0
"""The issue's targets for the shipped default model on 2 cores, at batch 256 and batch 1."""
FER_TFLITE = (819.0, 0.56)
"""The ``fer`` package's TFLite emotion model: faces/s in batches and ms per face (reference)."""


def load_model(spec: str) -> tuple[Checkpoint, str]:
    """The checkpoint ``spec`` names and a label; a registered network that does not ship gets
    untrained weights."""
    if spec != "default" and spec not in list_pretrained() and is_model(spec):
        meta = CheckpointMeta(spec, {"in_chans": 1}, list(EMOTIONS), mean=0.5, std=0.25)
        return Checkpoint(meta.build_model().eval(), meta, None), f"{spec} (untrained)"
    checkpoint = resolve_checkpoint(spec)
    return checkpoint, checkpoint.meta.model_name if spec == "default" else spec


def median_seconds(run: Callable[[], object], runs: int, warmup: int) -> float:
    """The median wall time of ``runs`` calls of ``run`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(backend: Backend, args: argparse.Namespace, data: FerData | None) -> dict[str, float]:
    """Faces/s at ``args.batch_size`` and ms for one face through ``backend``, and its accuracy
    on ``data``'s val split where given."""
    size = backend.meta.input_size
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (args.batch_size, size, size), dtype=np.uint8)
    one = batch[:1]
    seconds = median_seconds(
        lambda: backend.predict_probs(batch, batch_size=args.batch_size), args.batch_runs, 3
    )
    latency = median_seconds(
        lambda: backend.predict_probs(one, batch_size=1), args.latency_runs, 20
    )
    result = {"faces_per_s": args.batch_size / seconds, "ms_per_face": latency * 1000}
    if data is not None:
        probs = backend.predict_probs(data.val.images, batch_size=args.batch_size)
        result["accuracy"] = float((probs.argmax(1) == data.val.labels).mean())
    return result


def format_table(rows: list[dict[str, Any]], batch_size: int) -> str:
    """The results as an aligned plain-text table, the speed-ups over PyTorch beside them."""
    header = ("model", "backend", f"faces/s @{batch_size}", "x torch", "ms @1", "x torch", "acc")
    lines = [header]
    for row in rows:
        base = row["torch"]
        for name in (name for name in BACKEND_LABELS if name in row):
            result = row[name]
            accuracy = result.get("accuracy")
            lines.append(
                (
                    row["model"] if name == "torch" else "",
                    BACKEND_LABELS[name],
                    f"{result['faces_per_s']:.0f}",
                    f"{result['faces_per_s'] / base['faces_per_s']:.2f}x",
                    f"{result['ms_per_face']:.3f}",
                    f"{base['ms_per_face'] / result['ms_per_face']:.2f}x",
                    "-" if accuracy is None else f"{accuracy:.2%}",
                )
            )
    return aligned_table(lines, text_columns=2)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--models", nargs="+", default=["default"], help="shipped names, checkpoints, networks")
    add("--threads", type=int, default=2, help="CPU threads for PyTorch and ONNX Runtime")
    add("--batch-size", type=int, default=256, help="faces per batch for the throughput")
    add("--batch-runs", type=int, default=20, help="timed batches (median)")
    add("--latency-runs", type=int, default=500, help="timed single faces (median)")
    add("--int8", action="store_true", help="also ONNX Runtime on the model quantised to int8")
    add(
        "--int8-full-range",
        action="store_true",
        help="int8 weights on all 8 bits (right only on CPUs with VNNI) instead of 7",
    )
    add(
        "--calibration",
        type=Path,
        default=SHARED_FER2013 if SHARED_FER2013.is_dir() else None,
        help="dataset: its train faces calibrate --int8, its val split gives the accuracies "
        "(default: the shared FER2013 where present)",
    )
    add("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if min(args.threads, args.batch_size, args.batch_runs, args.latency_runs) < 1:
        parser.error("--threads, --batch-size, --batch-runs and --latency-runs must be at least 1")
    if args.int8 and args.calibration is None:
        parser.error(f"--int8 needs --calibration DATA ({SHARED_FER2013} is absent)")
    return args


def backends(
    checkpoint: Checkpoint, args: argparse.Namespace, data: FerData | None
) -> Iterator[tuple[str, Backend]]:
    """The backends to time on ``checkpoint``, each built once the previous one is timed; int8 is
    the exported model quantised on 512 random train faces of ``data``."""
    yield "torch", TorchBackend(checkpoint)
    yield "onnx", OnnxBackend.from_checkpoint(checkpoint, threads=args.threads)
    if args.int8 and data is not None:
        calibration, _ = calibration_split(data.train.images)
        int8 = quantize_onnx(
            onnx_model_bytes(checkpoint),
            calibration,
            source=str(args.calibration),
            reduce_range=not args.int8_full_range,
        )
        yield "int8", OnnxBackend(int8, threads=args.threads)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.1f}: other work on this machine skews the figures")
    rows = []
    for spec in args.models:
        checkpoint, label = load_model(spec)
        size = checkpoint.meta.input_size
        data = None if args.calibration is None else load_fer(args.calibration, image_size=size)
        row: dict[str, Any] = {"model": label}
        for name, backend in backends(checkpoint, args, data):
            row[name] = measure(backend, args, data)
        rows.append(row)
        print(
            f"{label}: "
            + "; ".join(
                f"{BACKEND_LABELS[name]} {row[name]['faces_per_s']:.0f} faces/s, "
                f"{row[name]['ms_per_face']:.3f} ms"
                for name in BACKEND_LABELS
                if name in row
            ),
            flush=True,
        )
    env = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "threads": args.threads,
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "python": platform.python_version(),
        "load_average": load,
    }
    print(
        f"\n{env['date']}  {env['cpu']}  {args.threads} thread(s)  torch {env['torch']}  "
        f"onnxruntime {env['onnxruntime']}  load {load:.1f}"
    )
    print(format_table(rows, args.batch_size))
    print(
        f"targets (shipped default, 2 cores): >= {TARGET_FACES_PER_S:.0f} faces/s at batch 256, "
        f"<= {TARGET_MS:g} ms at batch 1; fer's TFLite model: {FER_TFLITE[0]:.0f} faces/s, "
        f"{FER_TFLITE[1]} ms"
    )
    if args.json is not None:
        atomic_write_text(args.json, json.dumps({"environment": env, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
