"""The canonical emotion classes and the names other datasets use for them.

One class order is used across the whole product (models, checkpoints, reports): the order of the
FER2013 challenge CSV, so that its ``emotion`` column is the class index unchanged.
"""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""FER2013 order: 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral."""

EMOTION_SYNONYMS: dict[str, str] = {
    "anger": "angry",
    "disgusted": "disgust",
    "fearful": "fear",
    "afraid": "fear",
    "happiness": "happy",
    "joy": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "neutrality": "neutral",
    "calm": "neutral",
}
"""Other datasets' folder names (CK+, RAF-DB, AffectNet exports) mapped to canonical names."""


def canonical_emotion(name: str) -> str | None:
    """Return the canonical emotion for a folder or label name, or None if it is not one."""
    key = name.strip().lower()
    if key in EMOTIONS:
        return key
    return EMOTION_SYNONYMS.get(key)
