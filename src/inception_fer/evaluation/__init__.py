"""Evaluation: metrics, test-time augmentation, figures and reports.

A typical evaluation::

    probs = predict_probs(model, images, mean=mean, std=std, tta="tencrop")
    report = classification_report(labels, probs, EMOTIONS)
    print(format_report(report))
    write_report_json(report, out / "report.json", extra={"model": name})
    plot_confusion(report, out / "confusion.png", title=name)
"""

from __future__ import annotations

from .metrics import ClassificationReport, classification_report, expected_calibration_error
from .plots import plot_confusion, plot_curves
from .report import format_report, write_report_json
from .tta import TTA_MODES, predict_probs, tta_views

__all__ = [
    "TTA_MODES",
    "ClassificationReport",
    "classification_report",
    "expected_calibration_error",
    "format_report",
    "plot_confusion",
    "plot_curves",
    "predict_probs",
    "tta_views",
    "write_report_json",
]
