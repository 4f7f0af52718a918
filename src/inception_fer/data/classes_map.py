"""Map class folder names and user class lists onto class indices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..classes import EMOTION_SYNONYMS, EMOTIONS, canonical_emotion
from ..errors import DataError


def class_key(name: str) -> str:
    """The comparison key of a class or folder name: its canonical emotion, else its lower case."""
    return canonical_emotion(name) or name.strip().lower()


@dataclass(frozen=True)
class ClassMap:
    """The class names of a dataset and the lookup from a folder name to a class index."""

    names: tuple[str, ...]
    explicit: bool

    @classmethod
    def create(cls, classes: Sequence[str] | None) -> ClassMap:
        """EMOTIONS when ``classes`` is None, else exactly the user's list (validated)."""
        if classes is None:
            return cls(names=EMOTIONS, explicit=False)
        if isinstance(classes, str):
            raise DataError(f"classes must be a list of class names, not the string {classes!r}")
        names = tuple(str(name).strip() for name in classes)
        if not names or any(not name for name in names):
            raise DataError(f"classes must be a non-empty list of non-empty names, got {classes!r}")
        keys = [class_key(name) for name in names]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise DataError(f"classes {list(names)} name the same class twice: {duplicates}")
        return cls(names=names, explicit=True)

    def index(self, folder: str, where: str) -> int:
        """The class index of folder ``folder`` (found at ``where``); DataError if unknown."""
        key = class_key(folder)
        for i, name in enumerate(self.names):
            if class_key(name) == key:
                return i
        if self.explicit:
            raise DataError(
                f"class folder {where} is not in classes {list(self.names)} "
                "(folders are matched case-insensitively, synonyms such as 'anger' allowed)"
            )
        raise DataError(
            f"class folder {where} is not a known emotion; known names: {', '.join(EMOTIONS)} "
            f"(synonyms: {', '.join(sorted(EMOTION_SYNONYMS))}); pass classes=[...] to use "
            "other class names"
        )
