"""Checkpoints: one safetensors file holding the weights, the JSON metadata and the training state.

A checkpoint file carries:

- ``model.*`` tensors: the network's ``state_dict``;
- ``state.*`` tensors (training checkpoints only): optimizer, scheduler and RNG state, flattened;
- metadata ``inception_fer``: JSON with the model name, its constructor arguments, class names,
  normalisation, epoch, metrics, and the non-tensor parts of the training state.

One file means one atomic rename: a crash or a full disk mid-write leaves the previous checkpoint
intact. Loading never unpickles code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from ..atomic import atomic_write_bytes
from ..errors import CheckpointError
from ..models import create_model

FORMAT = "inception-fer-checkpoint"
FORMAT_VERSION = 1
_META_KEY = "inception_fer"
_TENSOR_REF = "__tensor__"


@dataclass
class CheckpointMeta:
    """What a checkpoint says about its model; enough to rebuild it and preprocess its input."""

    model_name: str
    model_kwargs: dict[str, Any]
    class_names: list[str]
    mean: float
    std: float
    input_size: int = 48
    epoch: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def build_model(self) -> nn.Module:
        """A fresh, untrained model with this checkpoint's architecture."""
        return create_model(self.model_name, num_classes=len(self.class_names), **self.model_kwargs)


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model with its weights, its metadata, and any training state."""

    model: nn.Module
    meta: CheckpointMeta
    train_state: dict[str, Any] | None


def flatten_state(state: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    """Replace every tensor in a nested state by a reference, collecting tensors by key."""
    if isinstance(state, torch.Tensor):
        key = f"{prefix}{len(tensors)}"
        tensors[key] = state.detach().cpu().contiguous()
        return {_TENSOR_REF: key}
    if isinstance(state, Mapping):
        if not all(isinstance(k, (str, int)) for k in state):
            raise TypeError("state dictionaries must have str or int keys")
        items = [[k, flatten_state(v, tensors, prefix)] for k, v in state.items()]
        return {"__dict__": items}
    if isinstance(state, (list, tuple)):
        return {"__list__": [flatten_state(v, tensors, prefix) for v in state]}
    if state is None or isinstance(state, (bool, int, float, str)):
        return state
    raise TypeError(f"cannot store {type(state).__name__} in a checkpoint")


def unflatten_state(skeleton: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""
    if isinstance(skeleton, dict):
        if _TENSOR_REF in skeleton:
            return tensors[skeleton[_TENSOR_REF]]
        if "__dict__" in skeleton:
            return {k: unflatten_state(v, tensors) for k, v in skeleton["__dict__"]}
        if "__list__" in skeleton:
            return [unflatten_state(v, tensors) for v in skeleton["__list__"]]
    return skeleton


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    meta: CheckpointMeta,
    train_state: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights, ``meta`` and optional training state to ``path`` atomically."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    skeleton = None
    if train_state is not None:
        skeleton = flatten_state(dict(train_state), tensors, "state.")
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "meta": meta.__dict__,
        "train_state": skeleton,
    }
    data = save_safetensors(tensors, metadata={_META_KEY: json.dumps(header)})
    try:
        return atomic_write_bytes(path, data)
    except OSError as error:
        raise CheckpointError(
            f"could not write checkpoint {path}: {error.strerror or error}; "
            "the previous checkpoint is intact"
        ) from error


def checkpoint_file(path: str | os.PathLike[str]) -> Path:
    """The checkpoint file ``path`` names: itself, or a run directory's best (else last) one."""
    file = Path(path)
    if file.is_dir():
        for name in ("best.safetensors", "last.safetensors"):
            if (file / name).is_file():
                return file / name
        raise CheckpointError(f"{path} holds no best.safetensors or last.safetensors")
    if not file.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    return file


def read_checkpoint_file(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The header and tensors of a checkpoint file, with clear errors for anything else."""
    file = checkpoint_file(path)
    header, tensors = read_safetensors(file)
    if header is None:
        raise CheckpointError(f"{file} is a safetensors file but not an inception-fer checkpoint")
    return header, tensors


def read_safetensors(file: Path) -> tuple[dict[str, Any] | None, dict[str, torch.Tensor]]:
    """The checkpoint header (None for a plain safetensors file) and the tensors of ``file``."""
    data = file.read_bytes()
    try:
        tensors = load_safetensors(data)
        with_meta = _read_metadata(data)
    except (SafetensorError, ValueError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{file} is not a readable safetensors file: {error}") from error
    raw = with_meta.get(_META_KEY)
    if raw is None:
        return None, tensors
    header = json.loads(raw)
    if header.get("format") != FORMAT or header.get("version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{file}: unsupported checkpoint format {header.get('format')!r}")
    return header, tensors


def _read_metadata(data: bytes) -> dict[str, str]:
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_len])
    metadata: dict[str, str] = header.get("__metadata__", {})
    return metadata


def load_checkpoint(path: str | os.PathLike[str], with_train_state: bool = False) -> Checkpoint:
    """Rebuild the model a checkpoint describes and load its weights (strictly)."""
    header, tensors = read_checkpoint_file(path)
    meta = CheckpointMeta(**header["meta"])
    model = meta.build_model()
    load_model_weights(model, tensors, str(path))
    train_state = None
    if with_train_state and header.get("train_state") is not None:
        train_state = unflatten_state(header["train_state"], tensors)
    return Checkpoint(model=model, meta=meta, train_state=train_state)


def weights_mismatch(
    expected: Mapping[str, torch.Tensor], weights: Mapping[str, torch.Tensor]
) -> str | None:
    """How ``weights`` fail to fit a model whose state dict is ``expected`` (tensors missing,
    unexpected or of the wrong shape); None when they fit."""
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong = sorted(
        f"{k} {tuple(weights[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in weights and weights[k].shape != v.shape
    )
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if wrong:
        parts.append(f"{len(wrong)} of the wrong shape (e.g. {wrong[0]})")
    return "; ".join(parts) or None


def load_model_weights(model: nn.Module, tensors: Mapping[str, torch.Tensor], source: str) -> None:
    """Load the ``model.*`` tensors into ``model``; a clear error when they do not fit."""
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    mismatch = weights_mismatch(model.state_dict(), weights)
    if mismatch:
        raise CheckpointError(
            f"checkpoint {source} does not fit {type(model).__name__}: {mismatch}"
        )
    model.load_state_dict(weights)
