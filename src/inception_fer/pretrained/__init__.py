"""Pretrained weights shipped inside the package, loaded by name with no download."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import InceptionFerError
from ..models.registry import create_model
from ..training.checkpoint import Checkpoint, load_checkpoint, weights_mismatch

_SUFFIX = ".safetensors"

DEFAULT_MODEL = "inception_fer_f_pair"
"""The shipped model that ``"default"`` names (trained on FER2013 train, selected on PublicTest):
two ``inception_fer_f_silu`` networks from one 2-core CPU hour, averaged."""


def _weights_dir() -> Path:
    return Path(str(resources.files(__package__)))


def list_pretrained() -> list[str]:
    """Names of the models whose trained weights ship with the package."""
    return sorted(p.name[: -len(_SUFFIX)] for p in _weights_dir().glob(f"*{_SUFFIX}"))


def pretrained_path(name: str) -> Path:
    """The shipped checkpoint file of ``name`` (``"default"`` is :data:`DEFAULT_MODEL`); a clear
    error listing what ships otherwise."""
    if name == "default":
        name = DEFAULT_MODEL
    path = _weights_dir() / f"{name}{_SUFFIX}"
    if not path.is_file():
        shipped = ", ".join(list_pretrained()) or "none"
        raise InceptionFerError(f"no pretrained weights for {name!r}; shipped: {shipped}")
    return path


def is_shipped(name: str) -> bool:
    """Whether ``name`` is a shipped model (``"default"`` included)."""
    return name == "default" or name in list_pretrained()


def shipped_name(model: object) -> str | None:
    """The shipped model's name that ``model`` is (``"default"`` resolved), else ``None``."""
    if not isinstance(model, str) or not is_shipped(model):
        return None
    return DEFAULT_MODEL if model == "default" else model


def model_file(model: str | os.PathLike[str]) -> Path:
    """The checkpoint ``model`` names: a shipped model's file (names are looked up first), else
    an existing checkpoint file or run folder; a clear error listing what ships otherwise."""
    if isinstance(model, str) and is_shipped(model):
        return pretrained_path(model)
    if Path(model).exists():
        return Path(model)
    shipped = ", ".join(["default", *list_pretrained()])
    raise InceptionFerError(
        f"model {str(model)!r} is neither a shipped model ({shipped}) "
        "nor an existing checkpoint file or run folder"
    )


def load_pretrained_checkpoint(name: str) -> Checkpoint:
    """The shipped checkpoint of ``name``: model (eval mode), class names and normalisation."""
    checkpoint = load_checkpoint(pretrained_path(name))
    checkpoint.model.eval()
    return checkpoint


def load_pretrained(name: str, **kwargs: Any) -> nn.Module:
    """The model ``name`` with its shipped weights, in eval mode.

    Keyword arguments are constructor arguments, honoured as :func:`create_model` honours them:
    the network is built with them and the shipped weights are loaded into it (``drop_rate=0.3``
    for fine-tuning, say). One that the weights do not fit (another ``num_classes`` or
    ``in_chans``, other widths) is refused with the reason; to change the class count,
    fine-tune from these weights instead.
    """
    checkpoint = load_pretrained_checkpoint(name)
    meta = checkpoint.meta
    shipped = {"num_classes": len(meta.class_names), **meta.model_kwargs}
    for key, value in kwargs.items():
        if key in shipped and shipped[key] != value:
            raise InceptionFerError(
                f"pretrained {name!r} has {key}={shipped[key]}, not {value}; "
                "fine-tune it to change that"
            )
    extra = {key: value for key, value in kwargs.items() if key not in shipped}
    if not extra:
        return checkpoint.model
    model = create_model(meta.model_name, **shipped, **extra)
    weights = checkpoint.model.state_dict()
    mismatch = weights_mismatch(model.state_dict(), weights)
    if mismatch:
        raise InceptionFerError(
            f"the shipped weights of {name!r} do not fit {meta.model_name} built with "
            f"{', '.join(f'{key}={value!r}' for key, value in extra.items())}: {mismatch}"
        )
    model.load_state_dict(weights)
    return model.eval()
