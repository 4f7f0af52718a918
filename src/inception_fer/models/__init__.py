"""The model library: Inception building blocks and registered networks."""

from __future__ import annotations

from . import ensemble, googlenet, inception_fer, inception_v3, mini_xception, tutorial
from .registry import (
    create_model,
    is_model,
    list_models,
    model_arguments,
    model_entrypoint,
    register_model,
)

__all__ = [
    "create_model",
    "ensemble",
    "googlenet",
    "inception_fer",
    "inception_v3",
    "is_model",
    "list_models",
    "mini_xception",
    "model_arguments",
    "model_entrypoint",
    "register_model",
    "tutorial",
]
