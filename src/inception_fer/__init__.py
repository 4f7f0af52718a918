"""inception-fer: Inception-family networks for facial emotion recognition."""

from __future__ import annotations

from .classes import EMOTIONS
from .models import create_model, list_models
from .pretrained import list_pretrained, load_pretrained

__version__ = "0.1.0"

__all__ = [
    "EMOTIONS",
    "__version__",
    "create_model",
    "list_models",
    "list_pretrained",
    "load_pretrained",
]
