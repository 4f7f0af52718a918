"""Export of trained networks to other runtimes: ONNX (for ONNX Runtime and others), float32 or
int8."""

from __future__ import annotations

from .onnx_export import (
    DEFAULT_OPSET,
    INPUT_NAME,
    METADATA_KEY,
    OUTPUT_NAME,
    ExportInfo,
    export_onnx,
    meta_from_onnx_metadata,
    onnx_model_bytes,
    write_onnx,
)
from .quantize import (
    DEFAULT_CALIBRATION_SIZE,
    calibration_split,
    export_int8_onnx,
    quantize_onnx,
)

__all__ = [
    "DEFAULT_CALIBRATION_SIZE",
    "DEFAULT_OPSET",
    "INPUT_NAME",
    "METADATA_KEY",
    "OUTPUT_NAME",
    "ExportInfo",
    "calibration_split",
    "export_int8_onnx",
    "export_onnx",
    "meta_from_onnx_metadata",
    "onnx_model_bytes",
    "quantize_onnx",
    "write_onnx",
]
