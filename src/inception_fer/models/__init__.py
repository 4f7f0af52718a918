"""The model library: Inception building blocks and registered networks."""

from __future__ import annotations

from .registry import create_model, is_model, list_models, model_entrypoint, register_model

__all__ = ["create_model", "is_model", "list_models", "model_entrypoint", "register_model"]
