"""``inception-fer train``: train a network on FER data (the tutorial's ``fit``, done properly)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import InceptionFerError
from ..evaluation.tta import TTA_MODES
from ..training.config import AMP_MODES, LAUNCH_OPTIONS, TrainConfig
from ..training.distributed import DIST_BACKENDS, DistContext
from ..training.fit import fit, resume
from ..training.optim import OPTIMIZERS, SCHEDULES

_DEFAULTS = TrainConfig()

_DESCRIPTION = """\
Train a registered network. Writes RUN_DIR/history.csv|json, curves.png, best.safetensors (best
validation accuracy) and last.safetensors (every epoch). '--model inception_tutorial --optimizer
adam --batch-size 64' is the Keras tutorial's set-up.

Several GPUs or machines: launch the same command with torchrun, e.g.
'torchrun --nproc-per-node 4 -m inception_fer train ...' (add --nnodes N --rdzv-backend c10d
--rdzv-endpoint HOST:PORT on each machine for several). Each process trains on its share of every
batch in DistributedDataParallel (NCCL on GPUs, gloo on CPUs); --batch-size stays the global batch,
so results compare across process counts. Rank 0 writes the run; the data and any --init file
must be at the same path on every machine. --resume works with any number of processes.

Transfer learning: --init CHECKPOINT|RUN_DIR|SHIPPED_MODEL|STATE_DICT starts from other weights
(torchvision googlenet / inception_v3 ImageNet .pth files included), with --classes for a new
class list, --freeze-backbone [--unfreeze-at EPOCH] and --head-lr-mult.
"""


def _class_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated class names, got {text!r}")
    return names


def parse_model_arg(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` as (key, value): VALUE parsed as JSON, else kept as a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a network on FER2013 (CSV, image folders or .npy), on one or many GPUs",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--model", default=None, help=f"network name (default {_DEFAULTS.model})")
    add(
        "--model-arg",
        type=parse_model_arg,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="network constructor argument, repeatable; VALUE is JSON or a string "
        "(e.g. stem=imagenet, conv5x5_kernel=3, aux_logits=false)",
    )
    add("--data", default=None, help="fer2013.csv, a Kaggle train/test folder, or .npy folder")
    add(
        "--classes",
        type=_class_list,
        help="comma-separated class names replacing the seven emotions, in output order "
        "(e.g. angry,disgust,fear,happy,sad,surprise,neutral,contempt): folders are matched to "
        "them, csv/npy labels index them",
    )
    add("--out", type=Path, default=None, help="run directory (default runs/MODEL)")
    add(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue the run saved in RUN_DIR (any number of processes) with its settings; "
        "only --epochs, --device, --threads, --dist-backend and --compile may change (other "
        "options are refused)",
    )
    add("--overwrite", action="store_true", help="replace a run already in --out")
    add("--epochs", type=int, help=f"number of epochs (default {_DEFAULTS.epochs})")
    add(
        "--time-budget",
        type=float,
        metavar="MINUTES",
        help="instead of --epochs: time the training steps first and train as many epochs as "
        "fit in MINUTES of wall time on this machine (loading and validation included); the "
        "count is saved in run.json",
    )
    add(
        "--batch-size",
        type=int,
        help=f"global batch size, split evenly over torchrun processes (default "
        f"{_DEFAULTS.batch_size})",
    )
    add(
        "--optimizer",
        choices=OPTIMIZERS,
        help=f"optimizer (default {_DEFAULTS.optimizer}); muon: Muon on convolution kernels, "
        "AdamW on the rest, at AdamW's learning rate and weight decay",
    )
    add("--lr", type=float, help=f"(peak) learning rate (default {_DEFAULTS.lr})")
    add("--weight-decay", type=float, help="weight decay (default 0)")
    add(
        "--no-decay-norm-bias",
        action="store_true",
        help="no weight decay on BatchNorm weights and biases (parameters of one dimension)",
    )
    add(
        "--whiten-stem",
        action="store_true",
        help="start the first convolution as a whitening of the training images' 3x3 patches "
        "(principal components in pairs of opposite sign, as airbench does)",
    )
    add("--schedule", choices=SCHEDULES, help="learning-rate schedule (default constant)")
    add("--warmup-epochs", type=float, help="linear warm-up epochs (default 0)")
    add("--label-smoothing", type=float, help="label smoothing in [0, 1) (default 0)")
    add("--class-weights", choices=("none", "balanced"), help="loss weights per class")
    add(
        "--augment",
        help="batch augmentation: 'none', 'default', or e.g. "
        "'flip,translate=0.1,rotate=10,scale=0.1,erase=0.25'; 'default,translate=0,crop=40' "
        "trains on random 40x40 crops (validation and inference see whole faces)",
    )
    add(
        "--crop-schedule",
        metavar="SIZE:EPOCHS,...,SIZE,...",
        help="random crop size by epoch, e.g. '32:16,36:16,40': 16 epochs on 32x32 crops, 16 on "
        "36x36, then 40x40 to the end (faster early epochs); the one stage without a number of "
        "epochs takes what the others leave, so '40,48:6' ends with 6 epochs on whole 48x48 "
        "faces (replaces --augment's crop)",
    )
    add(
        "--finish-augment",
        metavar="SPEC",
        help="augmentation of the --crop-schedule stages after its open-ended one, in --augment's "
        "form: with '40,48:10', 'flip,erase=0.25' ends on 10 epochs of whole, unwarped faces "
        "(default: --augment's)",
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
    add(
        "--val-from",
        type=int,
        metavar="EPOCH",
        help="validate only from this epoch (1-based) on: earlier epochs skip validation and "
        "the BatchNorm re-estimation of crop runs, and cannot be the best (default 1)",
    )
    add(
        "--val-tta",
        choices=TTA_MODES,
        help="score each validation with this test-time augmentation, as `evaluate --tta` does: "
        "the logged accuracy and the best checkpoint are those of the averaged views "
        "(default none; flip costs 2 forward passes per face, shift and tencrop 10)",
    )
    add("--early-stopping", type=int, help="stop after N validated epochs without improvement")
    add("--clip-grad", type=float, help="clip the gradient norm to this value (0 = off)")
    add(
        "--ema",
        type=float,
        metavar="DECAY",
        help="validate and save an exponential moving average of the weights, updated after "
        "every step with this decay (e.g. 0.999; 0 = off, the default)",
    )
    add("--no-channels-last", action="store_true", help="use the default memory layout")
    add(
        "--amp",
        choices=AMP_MODES,
        help="mixed precision: bf16 or fp16 (GPU); default none. bf16 also speeds up CPUs "
        "with AVX-512 BF16 or AMX (1.4-1.9x here) but is emulated, and slow, on AVX2-only CPUs",
    )
    add(
        "--init",
        metavar="WEIGHTS",
        help="start from these weights: a checkpoint or run directory (the head is "
        "re-initialised if the classes differ), a shipped model name, or a state_dict file "
        "(.safetensors, .pth/.pt; torchvision googlenet / inception_v3 keys are translated, "
        "RGB first convs summed to gray); prints what was loaded",
    )
    add(
        "--freeze-backbone",
        action="store_true",
        help="train only the head (classifier layers); the backbone's weights and BatchNorm "
        "statistics stay as loaded",
    )
    add(
        "--unfreeze-at",
        type=int,
        metavar="EPOCH",
        help="with --freeze-backbone: train the whole network from this epoch (1-based) on",
    )
    add(
        "--head-lr-mult",
        type=float,
        help="learning rate of the head = --lr x this (default 1; e.g. 10 with a low --lr "
        "fine-tunes the backbone gently)",
    )
    add("--device", help="cpu, cuda, cuda:N or auto (default); under torchrun, cuda:LOCAL_RANK")
    add("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    add(
        "--dist-backend",
        choices=DIST_BACKENDS,
        help="torch.distributed backend under torchrun (default auto: nccl on GPUs, gloo on CPU)",
    )
    add(
        "--sync-bn",
        action="store_true",
        help="under torchrun, BatchNorm statistics over the global batch (SyncBatchNorm; "
        "GPUs only: torch has no CPU implementation)",
    )
    add(
        "--compile",
        action="store_true",
        help="torch.compile the training step (compiles at the first step; needs a C++ "
        "compiler on the CPU)",
    )
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
    if args.no_decay_norm_bias:
        values["decay_norm_bias"] = False
    if args.model_arg:
        values["model_kwargs"] = dict(args.model_arg)
    return TrainConfig(**values)


_RESUME_MAY_PASS = frozenset({"command", "func", "resume", "epochs", "quiet", *LAUNCH_OPTIONS})


def _options_resume_cannot_change(args: argparse.Namespace) -> list[str]:
    """Options given beside ``--resume`` that would change what the saved run computes."""
    return [
        name
        for name, value in vars(args).items()
        if name not in _RESUME_MAY_PASS and value is not None and value is not False and value != []
    ]


def run(args: argparse.Namespace) -> int:
    if args.resume is not None:
        given = _options_resume_cannot_change(args)
        if given:
            options = ", ".join(f"--{name.replace('_', '-')}" for name in given)
            raise InceptionFerError(
                f"--resume continues a saved run with its own settings: do not pass {options} "
                "(only --epochs and the launch options may change; start a new run with --out "
                "to train differently)"
            )
        launch = {key: getattr(args, key) for key in LAUNCH_OPTIONS if getattr(args, key)}
        result = resume(args.resume, epochs=args.epochs, quiet=args.quiet, launch=launch)
    else:
        if args.data is None:
            raise InceptionFerError("--data is required (fer2013.csv, an image folder or .npy)")
        if args.time_budget is not None and args.epochs is not None:
            raise InceptionFerError(
                "--time-budget sets the number of epochs: pass --epochs or --time-budget, not both"
            )
        config = _config_from_args(args)
        run_dir = args.out or Path("runs") / config.model
        result = fit(config, run_dir, overwrite=args.overwrite, quiet=args.quiet)
    if DistContext.from_env().is_main:
        print(
            f"best val_acc {result.best_val_acc:.4f} at epoch {result.best_epoch}; "
            f"checkpoints in {result.run_dir}"
        )
    return 0
