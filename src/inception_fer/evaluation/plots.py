"""Evaluation figures: confusion matrices and training curves, written atomically.

Figures are drawn on a bare :class:`~matplotlib.figure.Figure` with the Agg canvas, so neither
pyplot nor the global backend is touched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..atomic import atomic_save
from ..errors import InceptionFerError
from .metrics import ClassificationReport


def _save(fig: Figure, path: Path) -> Path:
    """Save ``fig`` atomically in the format named by ``path``'s suffix (PNG if none)."""
    canvas = FigureCanvasAgg(fig)
    fmt = path.suffix[1:].lower() or "png"
    if fmt not in canvas.get_supported_filetypes():
        valid = ", ".join(sorted(canvas.get_supported_filetypes()))
        raise InceptionFerError(f"cannot write a figure as {path.name!r}; valid suffixes: {valid}")
    return atomic_save(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=120))


def _matrix_panel(
    fig: Figure, ax: Axes, matrix: np.ndarray, names: Sequence[str], fmt: str, title: str
) -> None:
    image = ax.imshow(matrix, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ticks = np.arange(len(names))
    ax.set_xticks(ticks, labels=list(names), rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(ticks, labels=list(names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, col), value in np.ndenumerate(matrix):
        colour = "white" if value > threshold else "black"
        ax.text(col, row, format(value, fmt), ha="center", va="center", color=colour, fontsize=8)


def plot_confusion(report: ClassificationReport, path: Path, title: str = "") -> Path:
    """Draw the confusion matrix as counts and row-normalised (recall on the diagonal)."""
    k = len(report.class_names)
    side = max(4.0, 0.6 * k + 2.0)
    fig = Figure(figsize=(2 * side + 1.5, side), layout="constrained")
    counts_ax, norm_ax = fig.subplots(1, 2)
    names = report.class_names
    _matrix_panel(fig, counts_ax, report.confusion, names, "d", f"counts (N={report.num_samples})")
    _matrix_panel(fig, norm_ax, report.confusion_normalized(), names, ".2f", "row-normalised")
    heading = f"accuracy {report.accuracy:.2%}, macro-F1 {report.macro_f1:.3f}"
    fig.suptitle(f"{title}\n{heading}" if title else heading)
    return _save(fig, Path(path))


def _column(history: Sequence[Mapping[str, float]], key: str) -> np.ndarray:
    """``key`` of every row as floats; missing or None values become NaN."""
    values = [row.get(key) for row in history]
    return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)


def plot_curves(history: Sequence[Mapping[str, float]], path: Path, title: str = "") -> Path:
    """Plot loss and accuracy per epoch, train against validation (Keras-tutorial style).

    Rows have keys ``epoch``, ``train_loss``, ``val_loss``, ``train_acc``, ``val_acc``; a
    missing ``epoch`` is the row number from 1. Missing or NaN values are skipped, so validation
    every few epochs still draws a line; a series with no values is left out. The epoch of the
    best validation accuracy is marked.
    """
    if not history:
        raise InceptionFerError("no training history to plot")
    epochs = _column(history, "epoch")
    epochs = np.where(np.isnan(epochs), np.arange(1, len(history) + 1), epochs)
    val_acc = _column(history, "val_acc")
    best = int(np.nanargmax(val_acc)) if not np.isnan(val_acc).all() else None
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    for ax, metric, label in zip(
        fig.subplots(1, 2), ("loss", "acc"), ("loss", "accuracy"), strict=True
    ):
        for split, name in (("train", "train"), ("val", "validation")):
            values = _column(history, f"{split}_{metric}")
            known = np.isfinite(values)
            if known.any():
                marker = "o" if known.sum() <= 30 else None
                ax.plot(epochs[known], values[known], marker=marker, markersize=3, label=name)
        if best is not None:
            ax.axvline(epochs[best], color="grey", linestyle=":", label="best validation accuracy")
        ax.set_title(f"model {label}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, Path(path))
