"""Classification metrics from labels and predicted probabilities (pure numpy).

Accuracy, per-class precision/recall/F1, macro-F1, the confusion matrix, the expected calibration
error (ECE) and the negative log-likelihood, gathered in one frozen :class:`ClassificationReport`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError, InceptionFerError

_PROB_SUM_TOL = 1e-3
_LOG_EPS = 1e-12


@dataclass(frozen=True, eq=False)
class ClassificationReport:
    """Metrics of one evaluation; per-class arrays follow ``class_names`` order."""

    class_names: tuple[str, ...]
    accuracy: float
    macro_f1: float
    ece: float
    nll: float
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    confusion: np.ndarray
    """(K, K) counts: rows are the true class, columns the predicted class."""
    ece_bins: int = 15

    @property
    def num_samples(self) -> int:
        """Number of evaluated samples."""
        return int(self.support.sum())

    def confusion_normalized(self) -> np.ndarray:
        """The confusion matrix with each row divided by its support (rows with none stay 0)."""
        rows = self.confusion.sum(axis=1, keepdims=True).astype(np.float64)
        return np.divide(
            self.confusion, rows, out=np.zeros(self.confusion.shape, np.float64), where=rows > 0
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: plain floats, ints and lists; per-class metrics keyed by name."""
        per_class = {
            name: {
                "precision": float(self.precision[i]),
                "recall": float(self.recall[i]),
                "f1": float(self.f1[i]),
                "support": int(self.support[i]),
            }
            for i, name in enumerate(self.class_names)
        }
        return {
            "class_names": list(self.class_names),
            "num_samples": self.num_samples,
            "accuracy": float(self.accuracy),
            "macro_f1": float(self.macro_f1),
            "ece": float(self.ece),
            "ece_bins": int(self.ece_bins),
            "nll": float(self.nll),
            "per_class": per_class,
            "confusion": self.confusion.astype(int).tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassificationReport:
        """Rebuild a report from :meth:`to_dict` output (extra keys are ignored)."""
        try:
            names = tuple(str(n) for n in data["class_names"])
            per_class = data["per_class"]
            column = {
                key: np.array([per_class[n][key] for n in names], dtype=np.float64)
                for key in ("precision", "recall", "f1")
            }
            return cls(
                class_names=names,
                accuracy=float(data["accuracy"]),
                macro_f1=float(data["macro_f1"]),
                ece=float(data["ece"]),
                nll=float(data["nll"]),
                precision=column["precision"],
                recall=column["recall"],
                f1=column["f1"],
                support=np.array([per_class[n]["support"] for n in names], dtype=np.int64),
                confusion=np.array(data["confusion"], dtype=np.int64).reshape(
                    len(names), len(names)
                ),
                ece_bins=int(data.get("ece_bins", 15)),
            )
        except KeyError as exc:
            raise DataError(f"classification report is missing the key {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise DataError(f"classification report is malformed: {exc}") from None


def _validate(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes, ranges and row sums; return int64 labels and float64 probs."""
    labels = np.asarray(labels)
    probs = np.asarray(probs)
    if probs.ndim != 2:
        raise DataError(f"probs must have shape (N, K), got shape {probs.shape}")
    if labels.ndim != 1:
        raise DataError(f"labels must have shape (N,), got shape {labels.shape}")
    n, k = probs.shape
    if labels.shape[0] != n:
        raise DataError(f"labels has {labels.shape[0]} entries but probs has {n} rows")
    if n == 0 or k == 0:
        raise DataError(f"nothing to evaluate: probs has shape {probs.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"labels must be integer class indices, got dtype {labels.dtype}")
    bad = np.flatnonzero((labels < 0) | (labels >= k))
    if bad.size:
        raise DataError(
            f"label {labels[bad[0]]} at index {bad[0]} is outside the class range 0..{k - 1}"
        )
    probs = probs.astype(np.float64)
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise DataError("probs must be finite and non-negative")
    sums = probs.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > _PROB_SUM_TOL)
    if off.size:
        raise DataError(
            f"probs row {off[0]} sums to {sums[off[0]]:.6f}, not 1 (pass softmax probabilities)"
        )
    return labels.astype(np.int64), probs


def _ece(labels: np.ndarray, probs: np.ndarray, n_bins: int) -> float:
    if n_bins < 1:
        raise InceptionFerError(f"n_bins must be at least 1, got {n_bins}")
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    # Bins are (lo, hi]: confidence c falls in bin ceil(c * n_bins) - 1 (0 lands in the first).
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins).astype(np.float64)
    gap = np.bincount(bins, weights=correct, minlength=n_bins) - np.bincount(
        bins, weights=confidence, minlength=n_bins
    )
    # sum over bins of (n_b / N) * |acc_b - conf_b| = sum |sum(correct) - sum(conf)| / N
    return float(np.abs(gap).sum() / count.sum())


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """ECE with ``n_bins`` equal-width confidence bins (Guo et al. 2017).

    The confidence of a sample is its top probability; each bin contributes
    ``(n_bin / N) * |accuracy_bin - mean_confidence_bin|``.
    """
    labels, probs = _validate(labels, probs)
    return _ece(labels, probs, n_bins)


def classification_report(
    labels: np.ndarray, probs: np.ndarray, class_names: Sequence[str], n_bins: int = 15
) -> ClassificationReport:
    """All metrics of predictions ``probs`` (N, K) against integer ``labels`` (N,).

    The prediction is the arg-max class. A class never predicted has precision 0 and one never
    present has recall 0 (sklearn's ``zero_division=0``). Macro-F1 averages F1 over the classes
    that occur in ``labels`` or in the predictions (sklearn's default), so a class absent from
    both does not count as an F1 of 0. NLL is the mean of ``-log p(true class)``.
    """
    labels, probs = _validate(labels, probs)
    names = tuple(class_names)
    k = probs.shape[1]
    if len(names) != k:
        raise DataError(f"probs has {k} classes but {len(names)} class names were given")
    preds = probs.argmax(axis=1)
    confusion = np.bincount(labels * k + preds, minlength=k * k).reshape(k, k)
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    present = (support > 0) | (predicted > 0)
    true_probs = probs[np.arange(labels.size), labels]
    return ClassificationReport(
        class_names=names,
        accuracy=float(tp.sum() / labels.size),
        macro_f1=float(f1[present].mean()),
        ece=_ece(labels, probs, n_bins),
        nll=float(np.log(1.0 / np.maximum(true_probs, _LOG_EPS)).mean()),
        precision=precision,
        recall=recall,
        f1=f1,
        support=support.astype(np.int64),
        confusion=confusion.astype(np.int64),
        ece_bins=n_bins,
    )
