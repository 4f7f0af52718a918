"""Evaluate a checkpoint on a data split: report, confusion matrix plot and JSON."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data import load_fer
from ..errors import InceptionFerError
from ..models.fold_bn import fold_batchnorm
from ..training.checkpoint import load_checkpoint
from ..training.device import forward_batch_size, resolve_device
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
    loaded = load_checkpoint(checkpoint)
    meta = loaded.meta
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
    probs = predict_probs(
        fold_batchnorm(loaded.model),
        part.images,
        mean=meta.mean,
        std=meta.std,
        tta=tta,
        batch_size=batch_size if batch_size is not None else forward_batch_size(target),
        device=target,
    )
    report = classification_report(part.labels, probs, meta.class_names)
    out = Path(out_dir)
    title = f"{meta.model_name} on {split} (TTA {tta})"
    confusion_png = plot_confusion(report, out / "confusion.png", title=title)
    extra = {
        "checkpoint": str(checkpoint),
        "model": meta.model_name,
        "epoch": meta.epoch,
        "data": str(data),
        "split": split,
        "tta": tta,
        "images": len(part),
        "skipped_files": len(fer.bad_files),
    }
    report_json = write_report_json(report, out / "report.json", extra=extra)
    return Evaluation(report, confusion_png, report_json)
