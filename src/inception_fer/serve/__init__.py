"""The REST service and its web page: :func:`create_app` around a loaded ``EmotionRecognizer``."""

from .app import create_app

__all__ = ["create_app"]
