"""Keras 3 reference for ``train_throughput.py``: the same networks trained with ``model.fit``.

Runs in an interpreter that has TensorFlow (not a project dependency), e.g.
``/opt/tfbench/bin/python benchmarks/keras_reference.py --model googlenet --batch-size 64``.
Builds the tutorial network or GoogLeNet-48 with the functional API, compiles it with Adam and
categorical cross-entropy as the Keras FER2013 tutorial does, warms up on a few steps, then times
one ``model.fit`` epoch over random images and prints one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from keras import layers

NUM_CLASSES = 7
TUTORIAL_PARAMS = 83_760_487
AUX_LOSS_WEIGHT = 0.3
# GoogLeNet Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
TABLE_1: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def tutorial(size: int = 48) -> keras.Model:
    """The Keras FER2013 tutorial network: one naive Inception module and a 1200-600-150 MLP."""
    inputs = keras.Input((size, size, 1))

    def conv(x: Any, kernel: int) -> Any:
        return layers.Conv2D(10, kernel, padding="same", activation="relu")(x)

    tower_1 = conv(conv(inputs, 1), 3)
    tower_2 = conv(conv(inputs, 1), 5)
    tower_3 = conv(layers.MaxPooling2D(3, strides=1, padding="same")(inputs), 1)
    x = layers.Flatten()(layers.Concatenate()([tower_1, tower_2, tower_3]))
    for units in (1200, 600, 150):
        x = layers.Dense(units, activation="relu")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="inception_tutorial")


def _conv_bn(x: Any, filters: int, kernel: int) -> Any:
    x = layers.Conv2D(filters, kernel, padding="same", use_bias=False)(x)
    return layers.ReLU()(layers.BatchNormalization(epsilon=1e-3)(x))


def _inception(x: Any, widths: tuple[int, int, int, int, int, int]) -> Any:
    c1, c3r, c3, c5r, c5, pool_proj = widths
    pool = layers.MaxPooling2D(3, strides=1, padding="same")(x)
    return layers.Concatenate()(
        [
            _conv_bn(x, c1, 1),
            _conv_bn(_conv_bn(x, c3r, 1), c3, 3),
            _conv_bn(_conv_bn(x, c5r, 1), c5, 5),
            _conv_bn(pool, pool_proj, 1),
        ]
    )


def _aux_head(x: Any, name: str) -> Any:
    """4x4 average pool (the feature map is 12x12 at 48x48), 1x1 conv 128, FC 1024, dropout."""
    pool = int(x.shape[1]) // 4
    x = layers.Flatten()(_conv_bn(layers.AveragePooling2D(pool, strides=pool)(x), 128, 1))
    x = layers.Dropout(0.7)(layers.Dense(1024, activation="relu")(x))
    return layers.Dense(NUM_CLASSES, activation="softmax", name=name)(x)


def googlenet(size: int = 48) -> keras.Model:
    """GoogLeNet-48 as ``inception_fer``'s ``googlenet``: FER stem (3x3 64, 1x1 64, 3x3 192,
    max pool), Table-1 modules with 5x5 branches, BatchNorm, aux heads on 4a and 4d."""
    inputs = keras.Input((size, size, 1))
    x = _conv_bn(_conv_bn(_conv_bn(inputs, 64, 3), 64, 1), 192, 3)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = _inception(_inception(x, TABLE_1["3a"]), TABLE_1["3b"])
    x = _inception(layers.MaxPooling2D(3, strides=2, padding="same")(x), TABLE_1["4a"])
    aux1 = _aux_head(x, "aux1")
    for name in ("4b", "4c", "4d"):
        x = _inception(x, TABLE_1[name])
    aux2 = _aux_head(x, "aux2")
    x = layers.MaxPooling2D(3, strides=2, padding="same")(_inception(x, TABLE_1["4e"]))
    x = _inception(_inception(x, TABLE_1["5a"]), TABLE_1["5b"])
    x = layers.Dropout(0.4)(layers.GlobalAveragePooling2D()(x))
    main = layers.Dense(NUM_CLASSES, activation="softmax", name="main")(x)
    return keras.Model(inputs, {"main": main, "aux2": aux2, "aux1": aux1}, name="googlenet")


def build(name: str) -> tuple[keras.Model, dict[str, float] | None]:
    """The compiled network and, for multi-output ones, the loss weight of each output."""
    if name == "inception_tutorial":
        model, weights = tutorial(), None
        if model.count_params() != TUTORIAL_PARAMS:
            raise SystemExit(f"tutorial has {model.count_params()} params, not {TUTORIAL_PARAMS}")
        model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
        return model, weights
    model = googlenet()
    weights = {"main": 1.0, "aux2": AUX_LOSS_WEIGHT, "aux1": AUX_LOSS_WEIGHT}
    model.compile(
        "adam",
        loss={name: "categorical_crossentropy" for name in weights},
        loss_weights=weights,
        metrics={"main": ["accuracy"]},
    )
    return model, weights


class EpochTimer(keras.callbacks.Callback):
    """Wall time of the last epoch."""

    seconds = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.seconds = time.perf_counter() - self.started


def measure(name: str, batch_size: int, images: int, warmup_steps: int) -> dict[str, Any]:
    """Train on ``warmup_steps`` batches (tracing, XLA compile), then time one epoch of
    ``images`` random 48x48 images (float32, normalised beforehand, no augmentation)."""
    model, weights = build(name)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((images, 48, 48, 1), dtype=np.float32)
    one_hot = np.eye(NUM_CLASSES, dtype=np.float32)[rng.integers(0, NUM_CLASSES, images)]
    y: Any = one_hot if weights is None else dict.fromkeys(weights, one_hot)
    warm = warmup_steps * batch_size
    y_warm = y[:warm] if weights is None else {k: v[:warm] for k, v in y.items()}
    model.fit(x[:warm], y_warm, batch_size=batch_size, epochs=1, verbose=0)
    timer = EpochTimer()
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, callbacks=[timer])
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return {
        "model": name,
        "batch_size": batch_size,
        "images": images,
        "seconds": timer.seconds,
        "images_per_s": images / timer.seconds,
        "params": model.count_params(),
        "trainable_params": trainable,
        "jit_compile": bool(model.jit_compile),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", choices=("inception_tutorial", "googlenet"), required=True, help="network"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="batch size")
    parser.add_argument("--images", type=int, default=2048, help="images in the timed epoch")
    parser.add_argument("--warmup-steps", type=int, default=3, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=2, help="TF intra- and inter-op threads")
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    result = measure(args.model, args.batch_size, args.images, args.warmup_steps)
    print(json.dumps({**result, "threads": args.threads}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
