"""A timm-style model registry: ``register_model``, ``create_model`` and ``list_models``."""

from __future__ import annotations

import fnmatch
import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from ..errors import InceptionFerError

ModelFn = TypeVar("ModelFn", bound=Callable[..., nn.Module])

_MODEL_ENTRYPOINTS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: ModelFn) -> ModelFn:
    """Register a model constructor under its function name."""
    name = fn.__name__
    if name in _MODEL_ENTRYPOINTS:
        raise ValueError(f"model {name!r} is registered twice")
    _MODEL_ENTRYPOINTS[name] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Names of the registered models matching a shell-style pattern, sorted."""
    return sorted(name for name in _MODEL_ENTRYPOINTS if fnmatch.fnmatch(name, pattern))


def is_model(name: str) -> bool:
    """Whether ``name`` is a registered model."""
    return name in _MODEL_ENTRYPOINTS


def model_entrypoint(name: str) -> Callable[..., nn.Module]:
    """The constructor registered as ``name``; a clear error listing valid names otherwise."""
    try:
        return _MODEL_ENTRYPOINTS[name]
    except KeyError:
        valid = ", ".join(list_models())
        raise InceptionFerError(f"unknown model {name!r}; valid models: {valid}") from None


def model_arguments(name: str) -> list[str]:
    """The constructor arguments of model ``name``: the ``__init__`` parameters of the class its
    registered function returns (``num_classes``, ``in_chans``, ``drop_rate``...)."""
    model_class = typing.get_type_hints(model_entrypoint(name))["return"]
    parameters = inspect.signature(model_class.__init__).parameters
    return [key for key in parameters if key != "self"]


def _check_arguments(name: str, kwargs: dict[str, Any]) -> None:
    known = model_arguments(name)
    unknown = [key for key in kwargs if key not in known]
    if unknown:
        raise InceptionFerError(
            f"{name} has no argument {unknown[0]!r}; its arguments: {', '.join(known)}"
        )


def create_model(
    name: str,
    num_classes: int = 7,
    in_chans: int = 1,
    pretrained: bool = False,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model; ``pretrained=True`` loads the weights shipped in the package."""
    if pretrained:
        from ..pretrained import load_pretrained

        return load_pretrained(name, num_classes=num_classes, in_chans=in_chans, **kwargs)
    entry = model_entrypoint(name)
    if num_classes < 1:
        raise InceptionFerError(f"num_classes must be at least 1, got {num_classes}")
    if in_chans < 1:
        raise InceptionFerError(f"in_chans must be at least 1, got {in_chans}")
    _check_arguments(name, kwargs)
    return entry(num_classes=num_classes, in_chans=in_chans, **kwargs)
