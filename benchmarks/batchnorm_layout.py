"""Training step time with BatchNorm + activation run in contiguous memory against PyTorch's
modules on channels-last tensors (the reference).

Usage: ``python benchmarks/batchnorm_layout.py [--model inception_fer_f] [--sizes 40 48]
[--batch-size 128] [--rounds 8] [--steps 4] [--threads 2] [--json OUT]``.

Each step is what ``train --amp bf16`` runs on the CPU: a channels-last batch of random images,
the forward pass under bf16 autocast, cross-entropy, the backward pass and a fused AdamW step. The
two paths alternate round by round (``--steps`` steps each), so a machine whose speed drifts
affects both alike; the table gives the median and fastest step of each and the reference's
median over ours (above 1: ours is faster).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import torch
from torch import nn

from _report import aligned_table, cpu_model
from inception_fer.atomic import atomic_write_text
from inception_fer.models import blocks, create_model, list_models

PATHS = ("reference", "contiguous")


def training_step(model_name: str, batch_size: int, size: int) -> Callable[[], None]:
    """One bf16 channels-last training step of a fresh ``model_name`` on a fixed random batch."""
    torch.manual_seed(0)
    model = create_model(model_name).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    images = torch.randn(batch_size, 1, size, size).to(memory_format=torch.channels_last)
    labels = torch.randint(0, 7, (batch_size,))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = loss_fn(model(images).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def run_path(path: str, step: Callable[[], None], count: int) -> list[float]:
    """``count`` timed steps (ms) with ``path``: ours, or the modules in sequence."""
    reference = mock.patch.object(blocks, "takes_contiguous_path", lambda *_: False)
    with reference if path == "reference" else contextlib.nullcontext():
        times = []
        for _ in range(count):
            start = time.perf_counter()
            step()
            times.append((time.perf_counter() - start) * 1000)
    return times


def measure(model_name: str, batch_size: int, size: int, rounds: int, steps: int) -> dict:
    """Median and fastest step (ms) of each path, alternating in ``rounds`` rounds."""
    step_of = {path: training_step(model_name, batch_size, size) for path in PATHS}
    for path in PATHS:
        run_path(path, step_of[path], 2)  # warm-up: allocator, oneDNN primitives
    times: dict[str, list[float]] = {path: [] for path in PATHS}
    for _ in range(rounds):
        for path in PATHS:
            times[path] += run_path(path, step_of[path], steps)
    row: dict = {"size": size}
    for path in PATHS:
        row[path] = {"median_ms": statistics.median(times[path]), "min_ms": min(times[path])}
    row["speedup"] = row["reference"]["median_ms"] / row["contiguous"]["median_ms"]
    return row


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="inception_fer_f", choices=list_models())
    parser.add_argument("--sizes", type=int, nargs="+", default=[40, 48])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if min(args.sizes) < 8 or min(args.batch_size, args.rounds, args.steps, args.threads) < 1:
        parser.error("sizes must be at least 8 and the other counts at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [
        measure(args.model, args.batch_size, size, args.rounds, args.steps) for size in args.sizes
    ]
    print(f"{args.model}, batch {args.batch_size}, bf16, {args.threads} threads, {cpu_model()}")
    lines = [["input", "reference ms (median/min)", "contiguous ms (median/min)", "speedup"]]
    for row in rows:
        ref, ours = row["reference"], row["contiguous"]
        lines.append(
            [
                f"{row['size']}x{row['size']}",
                f"{ref['median_ms']:.0f} / {ref['min_ms']:.0f}",
                f"{ours['median_ms']:.0f} / {ours['min_ms']:.0f}",
                f"{row['speedup']:.2f}x",
            ]
        )
    print(aligned_table(lines))
    if args.json:
        report = {"model": args.model, "batch_size": args.batch_size, "threads": args.threads}
        report |= {"cpu": cpu_model(), "torch": torch.__version__, "results": rows}
        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
