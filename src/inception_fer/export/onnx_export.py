"""ONNX export: a checkpoint's network as one self-contained ``.onnx`` file.

The graph takes gray pixels as they come, float32 0-255, shaped (batch, C, S, S) with a dynamic
batch axis, normalises them itself (``(x / 255 - mean) / std``, the checkpoint's figures) and
returns softmax probabilities (batch, K). The network runs in eval mode: BatchNorm is folded into
the convolutions, dropout and auxiliary heads are gone. The checkpoint's metadata (class names,
input size, normalisation, model name) and the opset are stored as JSON in the model's
``metadata_props`` under :data:`METADATA_KEY`, so the file alone is enough to run it.

The exporter is PyTorch's TorchScript-based one (``dynamo=False``): it exports every registered
network in about a second with a clean graph (Conv, Relu, MaxPool, GlobalAveragePool, Gemm) on
every PyTorch version the package supports. The ``torch.export``-based exporter also exports them
all, to graphs as fast, but takes several seconds each (this module runs at every
``backend="onnx"`` start), logs to stderr, and writes opset 18+ only (asked for 17, its
down-conversion fails and leaves 18).
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import onnx
import torch
from torch import nn

from .. import __version__
from ..atomic import atomic_write_bytes
from ..errors import CheckpointError, InceptionFerError
from ..training.checkpoint import Checkpoint, CheckpointMeta

if TYPE_CHECKING:
    from ..inference.recognizer import ModelSpec

DEFAULT_OPSET = 17
"""ONNX opset of exported models: ONNX Runtime 1.12+ (and most other runtimes) run it."""

MIN_OPSET, MAX_OPSET = 13, 20
"""Opsets :func:`export_onnx` accepts."""

INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"
METADATA_KEY = "inception_fer"
FORMAT = "inception-fer-onnx"
FORMAT_VERSION = 1

_TORCHSCRIPT_EXPORTER: dict[str, Any] = (
    {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
)
"""Picks the TorchScript exporter (PyTorch 2.5+ takes ``dynamo``; earlier ones only have it)."""


@dataclass(frozen=True)
class ExportInfo:
    """What :func:`export_onnx` wrote: the file, its opset, its input and output, its size."""

    path: Path
    opset: int
    input_name: str
    input_shape: tuple[str | int, ...]
    output_name: str
    output_shape: tuple[str | int, ...]
    size_bytes: int
    meta: CheckpointMeta


class _Exportable(nn.Module):
    """Normalisation, the network (first output if it gives several) and softmax."""

    def __init__(self, model: nn.Module, mean: float, std: float) -> None:
        super().__init__()
        self.model, self.mean, self.std = model, float(mean), float(std)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        out = self.model((pixels / 255.0 - self.mean) / self.std)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return torch.softmax(out, dim=1)


def in_chans(meta: CheckpointMeta) -> int:
    """The number of input channels of a checkpoint's network."""
    return int(meta.model_kwargs.get("in_chans", 1))


def onnx_metadata(meta: CheckpointMeta, opset: int) -> dict[str, Any]:
    """The JSON stored under :data:`METADATA_KEY`: the checkpoint's metadata, opset and I/O."""
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "producer": f"inception-fer {__version__}",
        "opset": opset,
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "in_chans": in_chans(meta),
        "pixel_range": [0, 255],
        **dataclasses.asdict(meta),
    }


def meta_from_onnx_metadata(props: dict[str, str], source: str) -> CheckpointMeta:
    """The :class:`CheckpointMeta` stored in an exported model's ``metadata_props``."""
    raw = props.get(METADATA_KEY)
    if raw is None:
        raise CheckpointError(
            f"{source} has no {METADATA_KEY!r} metadata; export it with `inception-fer export`"
        )
    try:
        data = json.loads(raw)
        if data.get("format") != FORMAT or data.get("version", 0) > FORMAT_VERSION:
            raise CheckpointError(f"{source}: unsupported format {data.get('format')!r}")
        names = {f.name for f in dataclasses.fields(CheckpointMeta)}
        return CheckpointMeta(**{k: v for k, v in data.items() if k in names})
    except (json.JSONDecodeError, TypeError, AttributeError) as error:
        raise CheckpointError(f"{source}: unreadable {METADATA_KEY!r} metadata: {error}") from None


def onnx_model_bytes(
    checkpoint: Checkpoint,
    *,
    opset: int = DEFAULT_OPSET,
    batch_size_hint: int = 2,
) -> bytes:
    """The serialised, checked ONNX model of ``checkpoint`` (see the module docstring).

    ``batch_size_hint`` is the batch of the example traced; the batch axis stays dynamic. The
    network is exported on its own device and its train/eval mode is restored afterwards.
    """
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise InceptionFerError(f"opset must be in [{MIN_OPSET}, {MAX_OPSET}], got {opset}")
    if batch_size_hint < 1:
        raise InceptionFerError(f"batch_size_hint must be at least 1, got {batch_size_hint}")
    meta, model = checkpoint.meta, checkpoint.model
    device = next(model.parameters()).device
    size = meta.input_size
    example = torch.full((batch_size_hint, in_chans(meta), size, size), 128.0, device=device)
    wrapper = _Exportable(model, meta.mean, meta.std)
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's
            buffer = io.BytesIO()
            torch.onnx.export(
                wrapper,
                (example,),
                buffer,  # type: ignore[arg-type]  # this exporter writes to file objects too
                **_TORCHSCRIPT_EXPORTER,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                do_constant_folding=True,
            )
    finally:
        model.train(was_training)
    proto = onnx.load_model_from_string(buffer.getvalue())
    proto.producer_name, proto.producer_version = "inception-fer", __version__
    proto.doc_string = (
        f"{meta.model_name}: float32 gray pixels 0-255 shaped (batch, {in_chans(meta)}, "
        f"{size}, {size}) -> probabilities of {', '.join(meta.class_names)}"
    )
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(onnx_metadata(meta, opset))
    onnx.checker.check_model(proto, full_check=True)
    return proto.SerializeToString()


def export_onnx(
    model_spec: ModelSpec,
    path: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    batch_size_hint: int = 2,
) -> ExportInfo:
    """Export ``model_spec`` (a shipped model's name, ``"default"`` included, a checkpoint file,
    a run folder or a loaded :class:`Checkpoint`) to ``path`` as ONNX, atomically."""
    # imported here: the inference package imports this module for its ONNX backend
    from ..inference.recognizer import resolve_checkpoint

    checkpoint = resolve_checkpoint(model_spec)
    data = onnx_model_bytes(checkpoint, opset=opset, batch_size_hint=batch_size_hint)
    return write_onnx(data, path, checkpoint.meta, opset)


def write_onnx(
    data: bytes, path: str | os.PathLike[str], meta: CheckpointMeta, opset: int
) -> ExportInfo:
    """Write a serialised exported model of a checkpoint with ``meta`` to ``path``, atomically."""
    try:
        written = atomic_write_bytes(path, data)
    except OSError as error:
        raise InceptionFerError(f"could not write {path}: {error.strerror or error}") from None
    size = meta.input_size
    return ExportInfo(
        path=written,
        opset=opset,
        input_name=INPUT_NAME,
        input_shape=("batch", in_chans(meta), size, size),
        output_name=OUTPUT_NAME,
        output_shape=("batch", len(meta.class_names)),
        size_bytes=len(data),
        meta=meta,
    )
