"""Evaluate a checkpoint, or an ensemble of them, on a data split: report, confusion matrix
plot and JSON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import load_fer
from ..errors import InceptionFerError
from ..models.fold_bn import fold_batchnorm
from ..training.checkpoint import load_checkpoint
from ..training.device import forward_batch_size, resolve_device
from ..training.ensemble import check_ensemble_members
from .metrics import ClassificationReport, classification_report
from .plots import plot_confusion
from .report import write_report_json
from .tta import predict_probs


@dataclass
class Evaluation:
    """A report and where its files were written."""

    report: ClassificationReport
    confusion_png: Path
    report_json: Path


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: str | Path,
    out_dir: str | Path,
    *,
    split: str = "val",
    tta: str = "none",
    batch_size: int | None = None,
    device: str = "auto",
    skip_bad: bool = False,
) -> Evaluation:
    """Score ``checkpoint`` on ``split`` of ``data`` and write ``confusion.png`` and
    ``report.json`` to ``out_dir``. The data's classes must be the checkpoint's classes.
    ``batch_size`` defaults to the device's fastest (``forward_batch_size``)."""
    return evaluate_ensemble(
        [checkpoint],
        data,
        out_dir,
        split=split,
        tta=tta,
        batch_size=batch_size,
        device=device,
        skip_bad=skip_bad,
    )


def evaluate_ensemble(
    checkpoints: Sequence[str | Path],
    data: str | Path,
    out_dir: str | Path,
    *,
    split: str = "val",
    tta: str = "none",
    batch_size: int | None = None,
    device: str = "auto",
    skip_bad: bool = False,
) -> Evaluation:
    """Score the mean of the ``checkpoints``' class probabilities (each with ``tta``, its own
    normalisation) on ``split`` of ``data``, as :func:`evaluate_checkpoint` scores one; the
    report's ``checkpoint``, ``model`` and ``epoch`` are lists when there are several."""
    loaded = [load_checkpoint(path) for path in checkpoints]
    check_ensemble_members(checkpoints, loaded)
    meta = loaded[0].meta
    fer = load_fer(data, image_size=meta.input_size, classes=meta.class_names, skip_bad=skip_bad)
    if list(fer.class_names) != list(meta.class_names):
        raise InceptionFerError(
            f"the data's classes {list(fer.class_names)} differ from the checkpoint's "
            f"{meta.class_names}"
        )
    part = fer.split(split)
    if len(part) == 0:
        raise InceptionFerError(f"the {split!r} split of {data} is empty")
    target = resolve_device(device)
    batch = batch_size if batch_size is not None else forward_batch_size(target)
    probs = np.mean(
        [
            predict_probs(
                fold_batchnorm(member.model),
                part.images,
                mean=member.meta.mean,
                std=member.meta.std,
                tta=tta,
                batch_size=batch,
                device=target,
            )
            for member in loaded
        ],
        axis=0,
    )
    report = classification_report(part.labels, probs, meta.class_names)
    out = Path(out_dir)
    names = [member.meta.model_name for member in loaded]
    model = names[0] if len(loaded) == 1 else f"ensemble of {len(loaded)} ({', '.join(names)})"
    confusion_png = plot_confusion(
        report, out / "confusion.png", title=f"{model} on {split} (TTA {tta})"
    )
    one = len(loaded) == 1
    extra = {
        "checkpoint": str(checkpoints[0]) if one else [str(path) for path in checkpoints],
        "model": names[0] if one else names,
        "epoch": meta.epoch if one else [member.meta.epoch for member in loaded],
        "data": str(data),
        "split": split,
        "tta": tta,
        "images": len(part),
        "skipped_files": len(fer.bad_files),
    }
    report_json = write_report_json(report, out / "report.json", extra=extra)
    return Evaluation(report, confusion_png, report_json)
