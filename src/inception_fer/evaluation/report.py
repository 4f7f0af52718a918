"""A classification report as a terminal table and as a JSON file."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_text
from ..errors import InceptionFerError
from .metrics import ClassificationReport

WIDTH = 100
"""Target width of :func:`format_report` lines."""

_MAX_NAME = 20


def _abbreviate(name: str, width: int) -> str:
    """``name`` cut to ``width`` characters keeping both ends, e.g. ``'surp~ise'``."""
    if len(name) <= width:
        return name
    head = width // 2
    return name[:head] + "~" + name[len(name) - (width - 1 - head) :]


def format_report(report: ClassificationReport) -> str:
    """A plain-text summary: headline metrics, per-class table and confusion-matrix counts.

    Row labels are the class names (abbreviated beyond 20 characters); the confusion matrix's
    column headers are abbreviated so it fits in 100 columns, or numbered if abbreviations clash.
    """
    names = [_abbreviate(n, _MAX_NAME) for n in report.class_names]
    label_w = max(len("class"), *(len(n) for n in names))
    support_w = max(len("support"), len(str(int(report.support.max()))))
    lines = [
        f"samples {report.num_samples}  accuracy {report.accuracy:.4f}  "
        f"macro-F1 {report.macro_f1:.4f}  ECE {report.ece:.4f} ({report.ece_bins} bins)  "
        f"NLL {report.nll:.4f}",
        "",
        f"{'class':<{label_w}}  precision  recall      F1  {'support':>{support_w}}",
    ]
    for i, name in enumerate(names):
        lines.append(
            f"{name:<{label_w}}  {report.precision[i]:9.4f}  {report.recall[i]:6.4f}  "
            f"{report.f1[i]:6.4f}  {int(report.support[i]):>{support_w}d}"
        )
    k = len(names)
    count_w = len(str(int(report.confusion.max())))
    fit_w = (WIDTH - label_w) // k - 1
    cell_w = max(count_w, min(max(len(n) for n in names), fit_w))
    headers = [_abbreviate(n, cell_w) for n in names]
    rows = names
    if len(set(headers)) < k:
        headers = [str(i) for i in range(k)]
        rows = [f"{i} {n}" for i, n in enumerate(names)]
        label_w = max(len(r) for r in rows)
        cell_w = max(count_w, len(headers[-1]))
    lines += [
        "",
        "confusion matrix (rows = true, columns = predicted)",
        " " * label_w + "".join(f" {h:>{cell_w}}" for h in headers),
    ]
    for row_label, row in zip(rows, report.confusion, strict=True):
        lines.append(f"{row_label:<{label_w}}" + "".join(f" {int(c):>{cell_w}d}" for c in row))
    return "\n".join(lines)


def _json_default(value: object) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_report_json(
    report: ClassificationReport, path: Path, extra: Mapping[str, Any] | None = None
) -> Path:
    """Write ``report.to_dict()`` as JSON atomically, with ``extra`` keys merged at the top level.

    ``extra`` (model name, checkpoint, TTA mode...) may hold paths and numpy values; a key that
    clashes with a report key is an error.
    """
    payload = report.to_dict()
    if extra:
        clash = sorted(set(extra) & set(payload))
        if clash:
            raise InceptionFerError(f"extra keys clash with report keys: {', '.join(clash)}")
        payload.update(extra)
    try:
        text = json.dumps(payload, indent=2, default=_json_default)
    except TypeError as exc:
        raise InceptionFerError(f"cannot write report extras as JSON: {exc}") from None
    return atomic_write_text(Path(path), text + "\n")
