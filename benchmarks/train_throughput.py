"""Training throughput (images/s) of inception-fer's training loop against Keras 3 ``model.fit``.

Usage: ``python benchmarks/train_throughput.py [--models ...] [--batch-sizes 64 128] [--images N]
[--threads 2] [--extra-models ...] [--keras-python PATH | --no-keras] [--json OUT]``.

Ours is the exact epoch loop ``fit`` runs and times (``Trainer.train_epoch``: uint8 batch gather,
float conversion, normalisation, ``BatchAugment``, channels_last, fused Adam), on random in-memory
48x48 images, after a few untimed warm-up steps; validation and checkpointing are not part of it,
as they are not part of the ``images_per_s`` that ``fit`` reports. The Keras figure comes from
``keras_reference.py``, run with an interpreter that has TensorFlow (``--keras-python``), on the
same networks, image count, batch size and thread count, in the same run. Both run on the CPU.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from _report import aligned_table, cpu_model
from inception_fer.atomic import atomic_write_text
from inception_fer.classes import EMOTIONS
from inception_fer.data import FerData, Split
from inception_fer.models import list_models
from inception_fer.training.config import TrainConfig
from inception_fer.training.fit import Trainer

KERAS_SCRIPT = Path(__file__).resolve().with_name("keras_reference.py")
TARGETS: dict[str, float] = {"inception_tutorial": 2.5, "googlenet": 1.3}
"""Speed-up over Keras each network must reach; these are also the networks Keras can build."""
SIZE = 48


def synthetic_data(images: int, seed: int = 0) -> FerData:
    """``images`` random 48x48 uint8 faces with random labels, and an empty validation split."""
    rng = np.random.default_rng(seed)
    train = Split(
        rng.integers(0, 256, (images, SIZE, SIZE), dtype=np.uint8),
        rng.integers(0, len(EMOTIONS), images).astype(np.int64),
    )
    val = Split(np.zeros((0, SIZE, SIZE), np.uint8), np.zeros(0, np.int64))
    return FerData(train, val, None, EMOTIONS, "synthetic")


def measure_ours(
    model: str, batch_size: int, images: int, warmup_steps: int, threads: int, amp: str = "none"
) -> dict[str, Any]:
    """Images/s of one training epoch of ``fit``'s loop (Adam, default augmentation, ``amp``
    autocast), timed as ``fit`` times it, after ``warmup_steps`` untimed steps on the same
    trainer."""
    config = TrainConfig(
        model=model,
        batch_size=batch_size,
        augment="default",
        device="cpu",
        threads=threads,
        amp=amp,
    )
    with tempfile.TemporaryDirectory(prefix="inception-fer-bench-") as run_dir:
        trainer = Trainer(config, synthetic_data(images), Path(run_dir), True, lambda _: None)
        full_x, full_y = trainer.train_x, trainer.train_y
        warm = warmup_steps * batch_size
        trainer.train_x, trainer.train_y = full_x[:warm], full_y[:warm]
        trainer.train_epoch(0)
        trainer.train_x, trainer.train_y = full_x, full_y
        started = time.perf_counter()
        trainer.train_epoch(1)
        seconds = time.perf_counter() - started
        params = sum(p.numel() for p in trainer.model.parameters())
    del trainer
    gc.collect()
    return {
        "images": images,
        "seconds": seconds,
        "images_per_s": images / seconds,
        "params": params,
    }


def measure_keras(
    python: str, model: str, batch_size: int, images: int, warmup_steps: int, threads: int
) -> dict[str, Any]:
    """Run ``keras_reference.py`` under ``python`` and return the JSON it prints."""
    command = [python, str(KERAS_SCRIPT), "--model", model, "--batch-size", str(batch_size)]
    command += ["--images", str(images), "--warmup-steps", str(warmup_steps)]
    command += ["--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise SystemExit(f"keras_reference.py failed for {model} batch {batch_size}: {tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def compare(
    model: str, batch_size: int, ours: dict[str, Any], keras: dict[str, Any] | None
) -> dict[str, Any]:
    """One result row: both figures, their ratio, the target and whether it is met."""
    target = TARGETS.get(model)
    ratio = None if keras is None else ours["images_per_s"] / keras["images_per_s"]
    met = None if ratio is None or target is None else ratio >= target
    return {
        "model": model,
        "batch_size": batch_size,
        "ours": ours,
        "keras": keras,
        "ratio": ratio,
        "target": target,
        "met": met,
    }


def _cell(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(rows: list[dict[str, Any]]) -> str:
    """The results as an aligned plain-text table."""
    header = ("model", "batch", "ours img/s", "keras img/s", "ratio", "target", "met?")
    lines = [header]
    for row in rows:
        keras = row["keras"]
        met = {True: "yes", False: "NO", None: "-"}[row["met"]]
        lines.append(
            (
                row["model"],
                str(row["batch_size"]),
                f"{row['ours']['images_per_s']:.1f}",
                _cell(keras and keras["images_per_s"], ".1f"),
                _cell(row["ratio"], ".2f") + ("x" if row["ratio"] is not None else ""),
                _cell(row["target"], ".1f") + ("x" if row["target"] is not None else ""),
                met,
            )
        )
    return aligned_table(lines, text_columns=1)


def keras_interpreter(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str | None:
    """The interpreter to run Keras with, or None (with a printed note) to skip it."""
    if args.no_keras:
        return None
    if args.keras_python is not None:
        if not Path(args.keras_python).is_file():
            parser.error(f"--keras-python {args.keras_python}: no such interpreter")
        return str(args.keras_python)
    if importlib.util.find_spec("tensorflow") is not None:
        return sys.executable
    print(
        "note: TensorFlow is not installed in this interpreter, so Keras is skipped; pass "
        "--keras-python with one that has it (e.g. /opt/tfbench/bin/python)"
    )
    return None


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, str | None]:
    """The options, checked, and the interpreter to run Keras with (None: skip Keras)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--models", nargs="+", default=list(TARGETS), help="networks compared with Keras")
    add("--extra-models", nargs="*", default=[], help="networks measured without Keras")
    add("--batch-sizes", nargs="+", type=int, default=[64, 128], help="batch sizes to time")
    add("--images", type=int, default=2048, help="random images in the timed epoch")
    add("--warmup-steps", type=int, default=3, help="untimed training steps before the epoch")
    add("--threads", type=int, default=2, help="CPU threads for torch and TensorFlow")
    add("--keras-python", type=Path, help="python with TensorFlow (default: this one if it has it)")
    add("--no-keras", action="store_true", help="measure our loop only")
    add(
        "--amp",
        choices=("none", "bf16"),
        default="none",
        help="our loop's autocast (bf16: fast where the CPU has AVX-512 BF16 or AMX)",
    )
    add("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    for name in [*args.models, *args.extra_models]:
        if name not in list_models():
            parser.error(f"unknown model {name!r}; valid: {', '.join(list_models())}")
    if min(args.batch_sizes) < 1 or args.warmup_steps < 1 or args.threads < 1:
        parser.error("batch sizes, --warmup-steps and --threads must be at least 1")
    if args.images < max(args.batch_sizes):
        parser.error(f"--images {args.images} is less than one batch of {max(args.batch_sizes)}")
    return args, keras_interpreter(args, parser)


def main(argv: list[str] | None = None) -> int:
    args, keras_python = parse_args(argv)
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.1f}: other work on this machine skews the figures")
    rows = []
    for model in [*args.models, *args.extra_models]:
        python = keras_python if model in TARGETS and model in args.models else None
        for batch_size in args.batch_sizes:
            images = args.images // batch_size * batch_size  # whole batches only
            common = (model, batch_size, images, args.warmup_steps, args.threads)
            ours = measure_ours(*common, amp=args.amp)
            keras = None if python is None else measure_keras(python, *common)
            rows.append(compare(model, batch_size, ours, keras))
            theirs = "" if keras is None else f", keras {keras['images_per_s']:.1f}"
            print(
                f"{model} batch {batch_size}: ours {ours['images_per_s']:.1f}{theirs}", flush=True
            )
    keras_runs = [row["keras"] for row in rows if row["keras"]]
    env = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "threads": args.threads,
        "amp": args.amp,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "tensorflow": keras_runs[0]["tensorflow"] if keras_runs else None,
        "keras": keras_runs[0]["keras"] if keras_runs else None,
        "keras_jit_compile": keras_runs[0]["jit_compile"] if keras_runs else None,
        "load_average": load,
        "images": args.images,
        "warmup_steps": args.warmup_steps,
    }
    print(
        f"\n{env['date']}  {env['cpu']}  {args.threads} thread(s)  torch {env['torch']}"
        + (f"  tensorflow {env['tensorflow']} (keras {env['keras']})" if keras_runs else "")
    )
    print(format_table(rows))
    for row in rows:
        if row["keras"] and row["batch_size"] == args.batch_sizes[0]:
            keras = row["keras"]
            print(
                f"params {row['model']}: ours {row['ours']['params']:,}; keras "
                f"{keras['trainable_params']:,} trainable, {keras['params']:,} with BN moving stats"
            )
    if args.json is not None:
        atomic_write_text(args.json, json.dumps({"environment": env, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
