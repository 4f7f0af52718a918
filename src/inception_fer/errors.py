"""User-facing errors: one clear line, never a traceback from inside torch."""

from __future__ import annotations


class InceptionFerError(Exception):
    """An error caused by the user's input (name, file, shape, option) with a one-line message."""


class DataError(InceptionFerError):
    """A dataset, image, CSV or array that cannot be read as asked."""


class CheckpointError(InceptionFerError):
    """A checkpoint that is missing, corrupt, or does not fit the model."""
