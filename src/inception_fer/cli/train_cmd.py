"""``inception-fer train``: train a network on FER data (the tutorial's ``fit``, done properly)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InceptionFerError
from ..training.config import AMP_MODES, TrainConfig
from ..training.fit import fit, resume
from ..training.optim import OPTIMIZERS, SCHEDULES

_DEFAULTS = TrainConfig()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a network on FER2013 (CSV, image folders or .npy)",
        description=(
            "Train a registered network. Writes RUN_DIR/history.csv|json, curves.png, "
            "best.safetensors (best validation accuracy) and last.safetensors (every epoch). "
            "'--model inception_tutorial --optimizer adam --batch-size 64' is the Keras "
            "tutorial's set-up."
        ),
    )
    add = parser.add_argument
    add("--model", default=None, help=f"network name (default {_DEFAULTS.model})")
    add("--data", default=None, help="fer2013.csv, a Kaggle train/test folder, or .npy folder")
    add("--out", type=Path, default=None, help="run directory (default runs/MODEL)")
    add("--resume", type=Path, metavar="RUN_DIR", help="continue the run saved in RUN_DIR")
    add("--overwrite", action="store_true", help="replace a run already in --out")
    add("--epochs", type=int, help=f"number of epochs (default {_DEFAULTS.epochs})")
    add("--batch-size", type=int, help=f"batch size (default {_DEFAULTS.batch_size})")
    add("--optimizer", choices=OPTIMIZERS, help=f"optimizer (default {_DEFAULTS.optimizer})")
    add("--lr", type=float, help=f"(peak) learning rate (default {_DEFAULTS.lr})")
    add("--weight-decay", type=float, help="weight decay (default 0)")
    add("--schedule", choices=SCHEDULES, help="learning-rate schedule (default constant)")
    add("--warmup-epochs", type=float, help="linear warm-up epochs (default 0)")
    add("--label-smoothing", type=float, help="label smoothing in [0, 1) (default 0)")
    add("--class-weights", choices=("none", "balanced"), help="loss weights per class")
    add(
        "--augment",
        help="batch augmentation: 'none', 'default', or e.g. "
        "'flip,translate=0.1,rotate=10,scale=0.1,erase=0.25'",
    )
    add("--seed", type=int, help="random seed (default 0); runs are deterministic on the CPU")
    add("--drop-rate", type=float, help="dropout before the classifier (model default if unset)")
    add("--input-size", type=int, help="resize images to this size (default 48)")
    add(
        "--val-fraction",
        type=float,
        help="hold out this stratified fraction of train for validation instead of PublicTest",
    )
    add("--skip-bad", action="store_true", help="skip unreadable images and count them")
    add("--early-stopping", type=int, help="stop after N epochs without improvement (0 = off)")
    add("--clip-grad", type=float, help="clip the gradient norm to this value (0 = off)")
    add("--no-channels-last", action="store_true", help="use the default memory layout")
    add(
        "--amp",
        choices=AMP_MODES,
        help="mixed precision (GPU): bf16 or fp16; default none (bf16 is slow on AVX2 CPUs)",
    )
    add("--device", help="cpu, cuda, cuda:N or auto (default)")
    add("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    add("--quiet", action="store_true", help="no progress bar; one line per epoch")
    parser.set_defaults(func=run)


def _config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = {
        key: getattr(args, key)
        for key in TrainConfig.__dataclass_fields__
        if getattr(args, key, None) is not None
    }
    if args.no_channels_last:
        values["channels_last"] = False
    if args.skip_bad:
        values["skip_bad"] = True
    return TrainConfig(**values)


def run(args: argparse.Namespace) -> int:
    if args.resume is not None:
        if args.data is not None or args.model is not None:
            raise InceptionFerError("--resume continues a saved run: do not pass --model or --data")
        result = resume(args.resume, epochs=args.epochs, quiet=args.quiet)
    else:
        if args.data is None:
            raise InceptionFerError("--data is required (fer2013.csv, an image folder or .npy)")
        config = _config_from_args(args)
        run_dir = args.out or Path("runs") / config.model
        result = fit(config, run_dir, overwrite=args.overwrite, quiet=args.quiet)
    print(
        f"best val_acc {result.best_val_acc:.4f} at epoch {result.best_epoch}; "
        f"checkpoints in {result.run_dir}"
    )
    return 0
