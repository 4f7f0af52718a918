"""int8 ONNX models: ONNX Runtime's static QDQ quantisation of an export, calibrated on faces.

Weights become int8 per output channel; activations uint8 (asymmetric), their ranges the smallest
and largest values each tensor takes on the calibration faces (MinMax). ONNX Runtime fuses the
QuantizeLinear/DequantizeLinear pairs around each convolution into integer kernels (u8 x s8, fast
on CPUs with VNNI). The input normalisation stays float and so does the final softmax: the
probabilities are not rounded to steps of 1/256.

Weights use 7 of their 8 bits by default (``reduce_range``), so that the file is right on every
CPU: x86 CPUs without VNNI (AVX2, AVX-512 without VNNI) multiply u8 x s8 with ``vpmaddubsw``,
which adds pairs of products into saturating int16, and full-range weights overflow it. Measured
on an AVX2-only AMD EPYC, ``inception_fer_f`` with its earlier shipped weights, PublicTest
(float32 67.96 %): full-range weights 67.07 % and 93.8 % top-1 agreement with float32
(probabilities up to 0.55 apart), 7-bit weights 67.85 % and 98.2 % (0.08 apart); uint8 weights
(u8 x u8, no saturation) 67.73 % and 98.8 % at 0.7-0.85x the faces/s (one rough timing each).
Full-range weights (``reduce_range=False``) are for files that only run on CPUs with VNNI, where
they were a little more exact (``inception_fer_m``: 7-bit weights lost 0.6 % agreement);
:func:`saturates_here` tells whether a file's weights overflow this CPU.

Measured on ``inception_fer_m`` (the shipped default then), 512 FER2013 train faces, PublicTest
(3,589 faces, fp32 65.76 %): MinMax gives 65.42-65.70 % and 98.9-99.3 % top-1 agreement with fp32
over three calibration samples; Percentile (99.999) 65.51-65.90 % and 98.9-99.2 % at twice the
calibration time; Entropy (ONNX Runtime's 128 bins) is MinMax to the bit; int8 activations are as
accurate and three times slower (no u8 x s8 kernel).
Every input of a concatenation (an Inception module's branches) is quantised on the range of the
concatenated output, so that ONNX Runtime's QLinearConcat copies bytes instead of rescaling each
branch (except a grid reduction's max-pool branch, whose scale ONNX Runtime ties to its
input's): on a trained ``inception_fer_f``, 2 threads, batch 256, 2,784 against 2,673 faces/s
(median; PublicTest unchanged at 67.76 %). The ranges come from a first calibration pass.
ONNX Runtime's pre-processing (``quant_pre_process``) changed neither accuracy nor speed, took
1.4 s and wrote ONNX Runtime's private opset domains into the file: it is skipped (and the
quantiser's advice to run it silenced).

The quantiser works on files: the model and its calibration run in a temporary folder that is
removed afterwards.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime import quantization as ortq

from .. import __version__
from ..cpu_features import cpu_has_vnni
from ..errors import CheckpointError, DataError, InceptionFerError
from .onnx_export import (
    DEFAULT_OPSET,
    INPUT_NAME,
    METADATA_KEY,
    ExportInfo,
    in_chans,
    meta_from_onnx_metadata,
    onnx_model_bytes,
    write_onnx,
)

if TYPE_CHECKING:
    from ..inference.recognizer import ModelSpec

DEFAULT_CALIBRATION_SIZE = 512
"""Calibration faces the CLI and the benchmark draw from a dataset's train split."""

CALIBRATION_METHOD = "MinMax"
CALIBRATION_BATCH = 64
"""Faces per calibration forward pass."""

FLOAT_OPS = frozenset({"Softmax"})
"""Operators left in float (the probabilities); the normalisation before the first convolution is
float anyway (ONNX Runtime quantises no Div or Sub)."""


class _Faces(ortq.CalibrationDataReader):
    """The calibration faces as the graph's input, float32 (B, C, S, S), in batches."""

    def __init__(self, faces: np.ndarray, channels: int) -> None:
        self._batches = (
            np.repeat(faces[i : i + CALIBRATION_BATCH, None], channels, axis=1).astype(np.float32)
            for i in range(0, len(faces), CALIBRATION_BATCH)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: batch}


@contextlib.contextmanager
def _no_preprocessing_advice() -> Iterator[None]:
    """Drop the quantiser's warnings (on the root logger) that pre-processing was not run."""

    def keep(record: logging.LogRecord) -> bool:
        return "pre-processing" not in str(record.msg)

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def saturates_here(quantization: dict[str, Any]) -> bool:
    """Whether a file's ``"quantization"`` metadata (empty for float32) says full-range int8
    weights, as every int8 file written before ``weight_range`` was recorded has, and this CPU
    is an x86 one without VNNI, whose u8 x s8 kernels overflow on them."""
    full_range = bool(quantization) and quantization.get("weight_range", "full") == "full"
    return full_range and cpu_has_vnni() is False


def calibration_split(
    faces: np.ndarray, size: int = DEFAULT_CALIBRATION_SIZE, *, holdout: int = 0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random sample of ``size`` of ``faces`` to calibrate on (all of them if fewer), and
    up to ``holdout`` others, not among them, to check the quantised model on."""
    if size < 1 or holdout < 0:
        raise InceptionFerError(
            f"calibration size must be at least 1 and holdout 0 or more, got {size} and {holdout}"
        )
    order = np.random.default_rng(seed).permutation(len(faces))
    return faces[order[:size]], faces[order[size : size + holdout]]


def _check_faces(faces: np.ndarray, size: int) -> None:
    if not isinstance(faces, np.ndarray) or faces.dtype != np.uint8:
        kind = getattr(faces, "dtype", type(faces).__name__)
        raise DataError(f"calibration faces must be a uint8 array, got {kind}")
    if faces.ndim != 3 or faces.shape[1:] != (size, size) or not len(faces):
        raise DataError(
            f"calibration faces must be shaped (N, {size}, {size}) with N >= 1, "
            f"got shape {faces.shape}"
        )


def _concat_input_ranges(
    proto: onnx.ModelProto, fp32: Path, faces: _Faces, folder: str
) -> dict[str, list[dict[str, Any]]]:
    """Quantisation overrides giving every input of each Concat its output's calibrated range
    (MinMax on ``faces``; the range includes 0, as ONNX Runtime's always does)."""
    calibrator = ortq.create_calibrator(
        fp32,
        None,
        augmented_model_path=Path(folder, "augmented.onnx"),
        calibrate_method=ortq.CalibrationMethod.MinMax,
    )
    calibrator.collect_data(faces)
    ranges = calibrator.compute_data()
    overrides: dict[str, list[dict[str, Any]]] = {}
    for node in proto.graph.node:
        if node.op_type != "Concat" or node.output[0] not in ranges:  # e.g. a shape's Concat
            continue
        low, high = (np.float32(v).reshape(-1)[0] for v in ranges[node.output[0]].range_value)
        for name in node.input:
            overrides[name] = [{"rmin": min(low, np.float32(0)), "rmax": high}]
    return overrides


def quantize_onnx(
    model: bytes | str | os.PathLike[str],
    calibration: np.ndarray,
    *,
    source: str = "unspecified",
    reduce_range: bool = True,
) -> bytes:
    """The int8 version of an exported fp32 model (its bytes or file), calibrated on gray uint8
    face crops (N, S, S), checked, as bytes. ``source`` (where the faces come from) goes into the
    metadata's ``"quantization"`` entry with the method and the number of faces.
    ``reduce_range=False`` gives full-range weights, right only on CPUs with VNNI (see above)."""
    name = "the exported model" if isinstance(model, bytes) else str(model)
    if not isinstance(model, bytes) and not Path(model).is_file():
        raise CheckpointError(f"ONNX model not found: {model}")
    try:
        proto = onnx.load_model_from_string(model) if isinstance(model, bytes) else onnx.load(model)
    except Exception as error:  # protobuf's DecodeError and onnx's own errors
        raise CheckpointError(f"{name} is not a readable ONNX model: {error}") from None
    props = {p.key: p.value for p in proto.metadata_props}
    meta = meta_from_onnx_metadata(props, name)
    stored: dict[str, Any] = json.loads(props[METADATA_KEY])
    if "quantization" in stored:
        raise InceptionFerError(f"{name} is quantised already")
    _check_faces(calibration, meta.input_size)
    channels = in_chans(meta)
    with tempfile.TemporaryDirectory(prefix="inception-fer-int8-") as folder:
        fp32, int8 = Path(folder, "fp32.onnx"), Path(folder, "int8.onnx")
        onnx.save(proto, fp32)
        overrides = _concat_input_ranges(proto, fp32, _Faces(calibration, channels), folder)
        with _no_preprocessing_advice():
            ortq.quantize_static(
                fp32,
                int8,
                _Faces(calibration, channels),
                quant_format=ortq.QuantFormat.QDQ,
                op_types_to_quantize=sorted({n.op_type for n in proto.graph.node} - FLOAT_OPS),
                per_channel=True,
                reduce_range=reduce_range,
                activation_type=ortq.QuantType.QUInt8,
                weight_type=ortq.QuantType.QInt8,
                calibrate_method=ortq.CalibrationMethod.MinMax,
                extra_options={"TensorQuantOverrides": overrides},
            )
        quantised = onnx.load(int8)
    stored["quantization"] = {
        "method": "onnxruntime static QDQ",
        "weights": "int8 per channel",
        "weight_range": "7-bit" if reduce_range else "full",
        "activations": "uint8",
        "float_ops": sorted(FLOAT_OPS),
        "calibration": CALIBRATION_METHOD,
        "calibration_size": len(calibration),
        "calibration_source": source,
        "onnxruntime": ort.__version__,
    }
    quantised.producer_name, quantised.producer_version = "inception-fer", __version__
    quantised.doc_string = f"{proto.doc_string} (int8)"
    del quantised.metadata_props[:]
    entry = quantised.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(stored)
    onnx.checker.check_model(quantised, full_check=True)
    return quantised.SerializeToString()


def export_int8_onnx(
    model_spec: ModelSpec,
    path: str | os.PathLike[str],
    calibration: np.ndarray,
    *,
    source: str = "unspecified",
    opset: int = DEFAULT_OPSET,
    reduce_range: bool = True,
) -> ExportInfo:
    """Export ``model_spec`` (as :func:`~.onnx_export.export_onnx` takes it) to ``path`` as an
    int8 ONNX model calibrated on ``calibration`` (see :func:`quantize_onnx`), atomically."""
    from ..inference.recognizer import resolve_checkpoint

    checkpoint = resolve_checkpoint(model_spec)
    fp32 = onnx_model_bytes(checkpoint, opset=opset)
    data = quantize_onnx(fp32, calibration, source=source, reduce_range=reduce_range)
    return write_onnx(data, path, checkpoint.meta, opset)
