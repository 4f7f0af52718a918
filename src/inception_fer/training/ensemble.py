"""Trained checkpoints combined into one ensemble checkpoint (``inception-fer ensemble``).

The result is an ordinary checkpoint of the registered ``ensemble`` model (``models.ensemble``)
whose members carry the given checkpoints' weights: it evaluates, predicts, explains, exports and
ships like any other. Its metadata lists where each member came from (file, model, epoch,
metrics).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..errors import InceptionFerError
from ..models import create_model
from .checkpoint import Checkpoint, CheckpointMeta

Paths = Sequence[str | os.PathLike[str]]


def check_ensemble_members(paths: Paths, checkpoints: Sequence[Checkpoint]) -> None:
    """An ensemble's members must name the same classes and take the same input size."""
    if not checkpoints:
        raise InceptionFerError("an ensemble needs at least one checkpoint")
    first = checkpoints[0].meta
    for path, checkpoint in zip(paths[1:], checkpoints[1:], strict=True):
        meta = checkpoint.meta
        if list(meta.class_names) != list(first.class_names):
            raise InceptionFerError(
                f"{path} has the classes {meta.class_names} and {paths[0]} has "
                f"{first.class_names}: an ensemble's checkpoints must share their classes"
            )
        if meta.input_size != first.input_size:
            raise InceptionFerError(
                f"{path} takes {meta.input_size}x{meta.input_size} images and {paths[0]} takes "
                f"{first.input_size}x{first.input_size}: an ensemble's checkpoints must share "
                "their input size"
            )


def _check_same_input(paths: Paths, checkpoints: Sequence[Checkpoint]) -> int:
    """One network sees one normalised tensor: members must share normalisation and channels.
    Returns the input channels."""
    first = checkpoints[0].meta
    channels = int(first.model_kwargs.get("in_chans", 1))
    for path, checkpoint in zip(paths[1:], checkpoints[1:], strict=True):
        meta = checkpoint.meta
        if abs(meta.mean - first.mean) > 1e-6 or abs(meta.std - first.std) > 1e-6:
            raise InceptionFerError(
                f"{path} normalises faces with mean {meta.mean:.6f} / std {meta.std:.6f} and "
                f"{paths[0]} with {first.mean:.6f} / {first.std:.6f}: one ensemble network needs "
                "members trained on the same data (`evaluate` averages such checkpoints instead)"
            )
        if int(meta.model_kwargs.get("in_chans", 1)) != channels:
            raise InceptionFerError(
                f"{path} and {paths[0]} take different numbers of input channels"
            )
    return channels


def _member_spec(meta: CheckpointMeta) -> dict[str, Any]:
    kwargs = {key: value for key, value in meta.model_kwargs.items() if key != "in_chans"}
    return {"model": meta.model_name, **kwargs}


def combine_checkpoints(loaded: Sequence[Checkpoint], paths: Paths) -> Checkpoint:
    """One ``ensemble`` checkpoint from loaded checkpoints (``paths`` says where each came from,
    for errors and the metadata): their networks in order, probabilities averaged."""
    if len(loaded) != len(paths):
        raise ValueError("one path per checkpoint")
    check_ensemble_members(paths, loaded)
    channels = _check_same_input(paths, loaded)
    first = loaded[0].meta
    kwargs: dict[str, Any] = {
        "in_chans": channels,
        "members": [_member_spec(member.meta) for member in loaded],
    }
    model = create_model("ensemble", num_classes=len(first.class_names), **kwargs)
    for net, member in zip(model.members, loaded, strict=True):  # type: ignore[arg-type]
        net.load_state_dict(member.model.state_dict())
    sources = [
        {
            "checkpoint": str(path),
            "model": member.meta.model_name,
            "epoch": member.meta.epoch,
            "metrics": member.meta.metrics,
        }
        for path, member in zip(paths, loaded, strict=True)
    ]
    meta = CheckpointMeta(
        model_name="ensemble",
        model_kwargs=kwargs,
        class_names=list(first.class_names),
        mean=first.mean,
        std=first.std,
        input_size=first.input_size,
        extra={"members": sources},
    )
    return Checkpoint(model=model.eval(), meta=meta, train_state=None)
