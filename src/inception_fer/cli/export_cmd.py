"""``inception-fer export``: a checkpoint or shipped model as a self-contained ONNX file, float32
or int8 (calibrated on a dataset's train faces)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..data import load_fer
from ..errors import InceptionFerError
from ..export.onnx_export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, ExportInfo, export_onnx
from ..export.quantize import DEFAULT_CALIBRATION_SIZE, calibration_split, export_int8_onnx
from ..inference.backends import OnnxBackend, TorchBackend
from ..inference.recognizer import resolve_checkpoint
from ..pretrained import list_pretrained
from ..training.checkpoint import Checkpoint

RANDOM_CHECK_FACES, HOLDOUT_CHECK_FACES = 8, 1000
"""Default faces compared with PyTorch: random ones (float32), held-out train faces (int8)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    shipped = ", ".join(["default", *list_pretrained()])
    parser = subparsers.add_parser(
        "export",
        help="export a model to ONNX",
        description=(
            "Export a model to one ONNX file that takes float32 gray pixels 0-255 shaped "
            "(batch, C, S, S), normalises them itself and gives softmax probabilities "
            "(batch, K); the class names, input size and normalisation are in its metadata. "
            "The result is checked against PyTorch on random faces. With --int8, weights and "
            "activations are 8-bit integers (ONNX Runtime's static quantisation, calibrated on "
            "train faces of --calibration) and the check is on other train faces."
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
        help=f"faces on which ONNX Runtime is compared with PyTorch: random ones (default "
        f"{RANDOM_CHECK_FACES}), or with --int8 train faces not used for calibration (default "
        f"{HOLDOUT_CHECK_FACES}); 0 skips",
    )
    parser.add_argument(
        "--int8",
        action="store_true",
        help="quantise to int8 (about 3x faster on CPUs with VNNI); needs --calibration",
    )
    parser.add_argument(
        "--int8-full-range",
        action="store_true",
        help="int8 weights on all 8 bits instead of 7: a little more exact where the file only "
        "runs on CPUs with VNNI (AVX-512 VNNI, AVX-VNNI), far off on x86 CPUs without it",
    )
    parser.add_argument(
        "--calibration",
        type=Path,
        metavar="DATA",
        help="dataset (as `train` takes it) whose train faces calibrate --int8; never its val",
    )
    parser.add_argument(
        "--calibration-size",
        type=int,
        default=DEFAULT_CALIBRATION_SIZE,
        help=f"train faces drawn at random (seed 0) to calibrate on "
        f"(default {DEFAULT_CALIBRATION_SIZE})",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.check_faces is not None and args.check_faces < 0:
        raise InceptionFerError(f"--check-faces must be 0 or more, got {args.check_faces}")
    if args.int8 and args.calibration is None:
        raise InceptionFerError(
            "--int8 needs --calibration DATA: a dataset whose train faces calibrate the "
            "quantisation (e.g. the FER2013 folder or fer2013.csv)"
        )
    if not args.int8 and (args.calibration is not None or args.int8_full_range):
        option = "--calibration" if args.calibration is not None else "--int8-full-range"
        raise InceptionFerError(f"{option} is for --int8 only")
    if args.calibration_size < 1:
        raise InceptionFerError(
            f"--calibration-size must be at least 1, got {args.calibration_size}"
        )
    checkpoint = resolve_checkpoint(args.model)
    if args.int8:
        checks = HOLDOUT_CHECK_FACES if args.check_faces is None else args.check_faces
        train = load_fer(args.calibration, image_size=checkpoint.meta.input_size).train.images
        calibration, held_out = calibration_split(train, args.calibration_size, holdout=checks)
        source = f"{len(calibration)} random train faces of {args.calibration}"
        info = export_int8_onnx(
            checkpoint,
            args.output,
            calibration,
            source=source,
            opset=args.opset,
            reduce_range=not args.int8_full_range,
        )
    else:
        info = export_onnx(checkpoint, args.output, opset=args.opset)
    weights = (
        "int8 (static QDQ, full-range weights)" if args.int8_full_range else "int8 (static QDQ)"
    )
    _print_info(info, weights if args.int8 else "float32")
    if args.int8:
        print(f"calibrated on {source}")
        if checks and not len(held_out):
            print("no train faces left to check the int8 model on")
        _compare(checkpoint, info, held_out, "held-out train faces", agreement=True)
    else:
        checks = RANDOM_CHECK_FACES if args.check_faces is None else args.check_faces
        size = info.meta.input_size
        faces = np.random.default_rng(0).integers(0, 256, (checks, size, size), dtype=np.uint8)
        _compare(checkpoint, info, faces, "random faces", agreement=False)
    return 0


def _print_info(info: ExportInfo, weights: str) -> None:
    classes = ", ".join(info.meta.class_names)
    print(f"wrote {info.path} ({info.size_bytes / 1e6:.2f} MB), opset {info.opset}, {weights}")
    print(f"model  {info.meta.model_name}; classes {classes}")
    print(f"input  {info.input_name}: float32 {list(info.input_shape)}, gray pixels 0-255")
    print(f"output {info.output_name}: float32 {list(info.output_shape)}, softmax probabilities")


def _compare(
    checkpoint: Checkpoint, info: ExportInfo, faces: np.ndarray, what: str, *, agreement: bool
) -> None:
    """Print how far the written model's probabilities are from PyTorch's on ``faces`` and, with
    ``agreement`` (real faces), how often their top classes agree."""
    if not len(faces):
        return
    torch_probs = TorchBackend(checkpoint).predict_probs(faces, batch_size=256)
    onnx_probs = OnnxBackend(info.path).predict_probs(faces, batch_size=256)
    diff = float(np.abs(onnx_probs - torch_probs).max())
    print(f"max |ONNX Runtime - PyTorch| probability on {len(faces)} {what}: {diff:.2e}")
    if agreement:
        agree = float((onnx_probs.argmax(1) == torch_probs.argmax(1)).mean())
        print(f"top-1 agreement with PyTorch float32 on {len(faces)} {what}: {agree:.2%}")
