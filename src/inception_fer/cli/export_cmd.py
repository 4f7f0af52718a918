"""``inception-fer export``: a checkpoint or shipped model as a self-contained ONNX file."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..errors import InceptionFerError
from ..export.onnx_export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, export_onnx
from ..inference.backends import OnnxBackend, TorchBackend
from ..inference.recognizer import resolve_checkpoint
from ..pretrained import list_pretrained


def register(subparsers: argparse._SubParsersAction) -> None:
    shipped = ", ".join(["default", *list_pretrained()])
    parser = subparsers.add_parser(
        "export",
        help="export a model to ONNX",
        description=(
            "Export a model to one ONNX file that takes float32 gray pixels 0-255 shaped "
            "(batch, C, S, S), normalises them itself and gives softmax probabilities "
            "(batch, K); the class names, input size and normalisation are in its metadata. "
            "The result is checked against PyTorch on random faces."
        ),
    )
    parser.add_argument(
        "model", help=f"a shipped model ({shipped}), a checkpoint file or a run directory"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="the .onnx file to write")
    parser.add_argument(
        "--opset",
        type=int,
        default=DEFAULT_OPSET,
        help=f"ONNX opset, {MIN_OPSET} to {MAX_OPSET} (default {DEFAULT_OPSET})",
    )
    parser.add_argument(
        "--check-faces",
        type=int,
        default=8,
        help="random faces on which ONNX Runtime is compared with PyTorch (default 8; 0 skips)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.check_faces < 0:
        raise InceptionFerError(f"--check-faces must be 0 or more, got {args.check_faces}")
    checkpoint = resolve_checkpoint(args.model)
    info = export_onnx(checkpoint, args.output, opset=args.opset)
    classes = ", ".join(info.meta.class_names)
    print(f"wrote {info.path} ({info.size_bytes / 1e6:.2f} MB), opset {info.opset}")
    print(f"model  {info.meta.model_name}; classes {classes}")
    print(f"input  {info.input_name}: float32 {list(info.input_shape)}, gray pixels 0-255")
    print(f"output {info.output_name}: float32 {list(info.output_shape)}, softmax probabilities")
    if args.check_faces > 0:
        size = info.meta.input_size
        rng = np.random.default_rng(0)
        faces = rng.integers(0, 256, (args.check_faces, size, size), dtype=np.uint8)
        torch_probs = TorchBackend(checkpoint).predict_probs(faces)
        onnx_probs = OnnxBackend(info.path).predict_probs(faces)
        diff = float(np.abs(onnx_probs - torch_probs).max())
        print(
            f"max |ONNX Runtime - PyTorch| probability on {args.check_faces} random faces: "
            f"{diff:.2e}"
        )
    return 0
