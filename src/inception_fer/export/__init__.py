"""Export of trained networks to other runtimes: ONNX (for ONNX Runtime and others)."""

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
)

__all__ = [
    "DEFAULT_OPSET",
    "INPUT_NAME",
    "METADATA_KEY",
    "OUTPUT_NAME",
    "ExportInfo",
    "export_onnx",
    "meta_from_onnx_metadata",
    "onnx_model_bytes",
]
