"""``inception-fer evaluate``: accuracy, per-class metrics, confusion matrix and calibration."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..evaluation.evaluate import evaluate_ensemble
from ..evaluation.report import format_report
from ..evaluation.tta import TTA_MODES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score a checkpoint (or an ensemble of them) on a data split",
        description=(
            "Evaluate a checkpoint (a .safetensors file or a run directory) on FER data: "
            "accuracy, per-class precision/recall/F1, macro-F1, expected calibration error and "
            "the confusion matrix, printed and saved as confusion.png and report.json. Given "
            "several checkpoints, it scores their averaged class probabilities (an ensemble)."
        ),
    )
    parser.add_argument(
        "checkpoints",
        type=Path,
        nargs="+",
        metavar="checkpoint",
        help="checkpoint file or run directory; several are averaged",
    )
    parser.add_argument("--data", required=True, help="fer2013.csv, image folders or .npy")
    parser.add_argument(
        "--split",
        default="val",
        choices=("train", "val", "test"),
        help="val = PublicTest (default), test = PrivateTest where the data has it",
    )
    parser.add_argument("--tta", default="none", choices=TTA_MODES, help="test-time augmentation")
    parser.add_argument(
        "--batch-size",
        type=int,
        help="inference batch size (default: 64 on the CPU, where small batches run fastest, "
        "512 on a GPU)",
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")
    parser.add_argument("--skip-bad", action="store_true", help="skip unreadable images")
    parser.add_argument(
        "--out",
        type=Path,
        help="where to write confusion.png and report.json (default: beside the (first) "
        "checkpoint, in eval-SPLIT-TTA/, or eval-SPLIT-TTA-ensemble-N/ for N checkpoints)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    checkpoints: list[Path] = args.checkpoints
    first = checkpoints[0]
    base = first if first.is_dir() else first.parent
    name = f"eval-{args.split}-{args.tta}"
    if len(checkpoints) > 1:
        name += f"-ensemble-{len(checkpoints)}"
    out = args.out or base / name
    result = evaluate_ensemble(
        checkpoints,
        args.data,
        out,
        split=args.split,
        tta=args.tta,
        batch_size=args.batch_size,
        device=args.device,
        skip_bad=args.skip_bad,
    )
    print(format_report(result.report))
    print(f"wrote {result.confusion_png} and {result.report_json}")
    return 0
