"""Per-epoch training history, saved as CSV and JSON after every epoch."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..atomic import atomic_write_text

HISTORY_FIELDS = (
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "lr",
    "seconds",
    "images_per_s",
)


def write_history(rows: Sequence[Mapping[str, float]], run_dir: Path) -> None:
    """Write ``history.csv`` and ``history.json`` in ``run_dir`` atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(run_dir / "history.csv", buffer.getvalue())
    clean = [{k: _json_number(row[k]) for k in HISTORY_FIELDS if k in row} for row in rows]
    atomic_write_text(run_dir / "history.json", json.dumps(clean, indent=1))


def keras_history(rows: Sequence[Mapping[str, float]]) -> dict[str, list[float]]:
    """The history as Keras' ``History.history`` spells it: ``loss``, ``accuracy``, ``val_*``."""
    names = {
        "train_loss": "loss",
        "train_acc": "accuracy",
        "val_loss": "val_loss",
        "val_acc": "val_accuracy",
        "lr": "lr",
    }
    return {keras: [float(row[ours]) for row in rows] for ours, keras in names.items()}


def _json_number(value: float) -> float | None:
    return None if isinstance(value, float) and math.isnan(value) else value
