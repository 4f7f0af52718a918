"""One table for trained models: size, cost, PublicTest accuracy and CPU speed.

Speed is measured on random inputs in eval mode under ``torch.inference_mode`` with the threads
given: latency is the median of single-image forward passes, throughput the images/s of whole
batches. Accuracy is measured on the validation split (FER2013 PublicTest) of the data given.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data import load_fer
from ..inference.recognizer import ModelSpec, resolve_checkpoint
from ..models.fold_bn import fold_batchnorm
from ..summary import count_mult_adds
from .metrics import classification_report
from .tta import predict_probs


@dataclass(frozen=True)
class ModelRow:
    """One model's figures; ``accuracy`` maps a TTA mode to PublicTest accuracy (0-1)."""

    name: str
    architecture: str
    params: int
    mult_adds: int
    latency_ms: float
    images_per_s: float
    batch_size: int
    accuracy: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers and strings, ready for ``json.dumps``."""
        return {
            "name": self.name,
            "architecture": self.architecture,
            "params": self.params,
            "mult_adds": self.mult_adds,
            "latency_ms_batch1": round(self.latency_ms, 3),
            "images_per_s": round(self.images_per_s, 1),
            "batch_size": self.batch_size,
            "accuracy": self.accuracy,
        }


@torch.inference_mode()
def measure_speed(
    model: nn.Module, input_size: int, in_chans: int, batch_size: int = 256, seconds: float = 3.0
) -> tuple[float, float]:
    """(median ms per single image, images/s at ``batch_size``), each timed for about
    ``seconds`` after a warm-up, in channels-last memory as ``predict`` runs."""
    model = model.eval().to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def timed(x: torch.Tensor) -> list[float]:
        model(x)  # warm-up
        times: list[float] = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or len(times) < 3:
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
        return times

    shape = (in_chans, input_size, input_size)
    one = torch.randn(1, *shape).contiguous(memory_format=torch.channels_last)
    many = torch.randn(batch_size, *shape).contiguous(memory_format=torch.channels_last)
    latency = 1000 * statistics.median(timed(one))
    throughput = batch_size / statistics.median(timed(many))
    return latency, throughput


def model_row(
    spec: ModelSpec,
    data: str | Path | None = None,
    tta_modes: tuple[str, ...] = ("none",),
    batch_size: int = 256,
    seconds: float = 3.0,
) -> ModelRow:
    """Measure one model: a shipped name, a checkpoint file or a run folder."""
    checkpoint = resolve_checkpoint(spec)
    meta, model = checkpoint.meta, checkpoint.model
    in_chans = int(meta.model_kwargs.get("in_chans", 1))
    params = sum(p.numel() for p in model.parameters())
    macs = count_mult_adds(model, meta.input_size, in_chans)
    inference = fold_batchnorm(model)  # what `predict` runs
    accuracy = {}
    if data is not None:
        fer = load_fer(data, image_size=meta.input_size, classes=meta.class_names)
        images = np.repeat(fer.val.images[:, None], in_chans, axis=1)
        for mode in tta_modes:
            probs = predict_probs(inference, images, mean=meta.mean, std=meta.std, tta=mode)
            report = classification_report(fer.val.labels, probs, meta.class_names)
            accuracy[mode] = round(report.accuracy, 4)
    latency, throughput = measure_speed(inference, meta.input_size, in_chans, batch_size, seconds)
    return ModelRow(
        str(spec), meta.model_name, params, macs, latency, throughput, batch_size, accuracy
    )


def markdown_table(rows: list[ModelRow], tta_modes: tuple[str, ...], threads: int) -> str:
    """The rows as a Markdown table."""
    acc_heads = [f"PublicTest ({mode})" for mode in tta_modes]
    batch = rows[0].batch_size if rows else 256
    heads = ["model", "network", "parameters", "multiply-adds", *acc_heads,
             f"ms, batch 1 ({threads} threads)", f"images/s, batch {batch}"]  # fmt: skip
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * 2 + "---:|" * (len(heads) - 2)]
    for r in rows:
        acc = [f"{r.accuracy[m]:.2%}" if m in r.accuracy else "-" for m in tta_modes]
        cells = [f"`{r.name}`", r.architecture, f"{r.params:,}", f"{r.mult_adds / 1e6:,.1f} M",
                 *acc, f"{r.latency_ms:.2f}", f"{r.images_per_s:,.0f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
