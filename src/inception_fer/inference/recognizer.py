"""``EmotionRecognizer``: the emotion of every face in a picture, as a Python API.

A picture is decoded (:func:`load_image`), its faces found by a face detector, cropped like
FER2013's faces (:func:`crop_faces`) and classified together in one batch by a backend
(:mod:`.backends`: PyTorch, or ONNX Runtime).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..errors import InceptionFerError
from ..evaluation.tta import TTA_MODES
from ..faces import DEFAULT_DETECTOR, Face, FaceDetector, create_detector
from ..pretrained import model_file, shipped_name
from ..training.checkpoint import Checkpoint, CheckpointMeta, load_checkpoint
from .backends import Backend, TorchBackend, create_backend
from .face_crop import DEFAULT_ALIGN, DEFAULT_MARGIN, check_crop_options, crop_faces
from .image_input import DEFAULT_MAX_PIXELS, ColorOrder, ImageSource, describe_source, load_image

ModelSpec = str | os.PathLike[str] | Checkpoint
"""A shipped model's name (``"default"`` included), a checkpoint file, a run folder, or a loaded
:class:`Checkpoint`; with the ``onnx`` backend, also an exported ``.onnx`` file."""


@dataclass(frozen=True)
class FacePrediction:
    """One face: where it is, how sure the detector is, and its emotion probabilities.

    ``box`` is (x, y, w, h) in pixels of the picture as decoded (after EXIF rotation);
    ``probabilities`` maps each class, in the model's class order, to its probability (they sum
    to 1); ``landmarks`` are the detector's five (x, y) points (eyes, nose tip, mouth corners; see
    :class:`~inception_fer.faces.Face`) or None.
    """

    box: tuple[float, float, float, float]
    score: float
    probabilities: dict[str, float]
    landmarks: tuple[tuple[float, float], ...] | None = None

    @property
    def emotion(self) -> str:
        """The most probable class."""
        return max(self.probabilities, key=self.probabilities.__getitem__)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, floats and strings, ready for ``json.dumps``."""
        return {
            "box": list(self.box),
            "score": self.score,
            "emotion": self.emotion,
            "probabilities": dict(self.probabilities),
            "landmarks": None if self.landmarks is None else [list(p) for p in self.landmarks],
        }


@dataclass(frozen=True)
class ImageResult:
    """The faces of one picture of a batch, or why it could not be read (``error``)."""

    source: str
    faces: list[FacePrediction] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the picture was read (it may still hold no face)."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, floats and strings, ready for ``json.dumps``."""
        return {
            "source": self.source,
            "faces": [face.to_dict() for face in self.faces],
            "error": self.error,
        }


def resolve_checkpoint(model: ModelSpec) -> Checkpoint:
    """Load ``model``: a shipped name is looked up first, then a checkpoint file or run folder."""
    if isinstance(model, Checkpoint):
        return model
    checkpoint = load_checkpoint(model_file(model))
    checkpoint.model.eval()
    return checkpoint


class EmotionRecognizer:
    """Finds the faces in pictures and gives each one's emotion probabilities.

    ``model`` is a shipped model's name (``"default"``, or one of :func:`list_pretrained`), a
    checkpoint file, a training run's folder (its best, else last, checkpoint) or a loaded
    ``Checkpoint``; with ``backend="onnx"`` also a ``.onnx`` file from ``inception-fer export``.
    ``detector`` is a face detector's name (options in ``detector_kwargs``) or a built
    :class:`FaceDetector`. ``tta`` is one of ``none``, ``flip``, ``tencrop``, ``shift``; ``margin``,
    ``align`` and ``border`` are :func:`crop_faces`'s; pictures over ``max_pixels`` are refused
    unread. ``device`` is ``cpu``, ``cuda`` (``cuda:N``) or ``auto``. ``backend`` runs the
    network: ``torch`` (PyTorch) or ``onnx`` (the model exported to ONNX in memory, run by ONNX
    Runtime on the CPU on ``threads`` threads, see :class:`OnnxBackend`; PyTorch's thread count is
    process-wide, ``torch.set_num_threads``). ``name`` is the shipped model's name when ``model``
    is one (``"default"`` resolved), else the network's (``inception_fer_f``, ``ensemble``...).
    """

    def __init__(
        self,
        model: ModelSpec = "default",
        detector: str | FaceDetector = DEFAULT_DETECTOR,
        device: str = "cpu",
        tta: str = "none",
        batch_size: int = 64,
        margin: float = DEFAULT_MARGIN,
        align: bool = DEFAULT_ALIGN,
        border: str = "reflect",
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        backend: str = "torch",
        threads: int | None = None,
        **detector_kwargs: Any,
    ) -> None:
        if tta not in TTA_MODES:
            raise InceptionFerError(
                f"unknown TTA mode {tta!r}; valid modes: {', '.join(TTA_MODES)}"
            )
        if batch_size < 1:
            raise InceptionFerError(f"batch_size must be at least 1, got {batch_size}")
        if isinstance(detector, FaceDetector):
            if detector_kwargs:
                raise InceptionFerError(
                    "detector options apply to a detector given by name, not to a built detector"
                )
            self.detector = detector
        else:
            self.detector = create_detector(detector, **detector_kwargs)
        self._checkpoint = None if _is_onnx_file(model) else resolve_checkpoint(model)
        self.engine: Backend = create_backend(
            backend,
            model if self._checkpoint is None else self._checkpoint,
            device,
            threads=threads,
        )
        self.backend, self.device = self.engine.name, self.engine.device
        self.name = shipped_name(model) or self.meta.model_name
        check_crop_options(self.input_size, margin, border)
        self.tta, self.batch_size = tta, batch_size
        self.margin, self.align, self.border = margin, align, border
        self.max_pixels = max_pixels

    @property
    def meta(self) -> CheckpointMeta:
        """The model's metadata: architecture, classes, input size, normalisation."""
        return self.engine.meta

    @property
    def checkpoint(self) -> Checkpoint:
        """The loaded checkpoint (none when the model is an ``.onnx`` file)."""
        if self._checkpoint is None:
            raise InceptionFerError("this recognizer runs an .onnx file: it has no checkpoint")
        return self._checkpoint

    @property
    def model(self) -> nn.Module:
        """The PyTorch network that makes the predictions (``torch`` backend only)."""
        if not isinstance(self.engine, TorchBackend):
            raise InceptionFerError(f"the {self.backend} backend runs no PyTorch network")
        return self.engine.model

    @property
    def classes(self) -> tuple[str, ...]:
        """The model's classes, in the order of its outputs and of every ``probabilities``."""
        return tuple(self.meta.class_names)

    @property
    def input_size(self) -> int:
        """The side of the square gray face crops the model takes."""
        return self.meta.input_size

    def predict(
        self, source: ImageSource, *, color_order: ColorOrder = "rgb"
    ) -> list[FacePrediction]:
        """The faces in one picture, highest detector score first; [] when it shows no face.

        ``source`` is anything :func:`load_image` takes; ``color_order`` says whether a numpy
        array is RGB (the default, as PIL and matplotlib give) or BGR (as OpenCV gives).
        """
        image = load_image(source, color_order=color_order, max_pixels=self.max_pixels)
        return self.predict_bgr(image)

    def predict_bgr(self, image_bgr: np.ndarray) -> list[FacePrediction]:
        """The faces in an HxWx3 uint8 BGR image (a video frame, say); no decoding or copy."""
        faces = self.detector.detect(image_bgr)
        crops = crop_faces(
            image_bgr,
            faces,
            size=self.input_size,
            margin=self.margin,
            align=self.align,
            border=self.border,
        )
        probs = self.predict_faces(crops)
        return [_prediction(face, p, self.classes) for face, p in zip(faces, probs, strict=True)]

    def predict_faces(self, crops: np.ndarray) -> np.ndarray:
        """Probabilities (N, K) float32, in :attr:`classes` order, of gray uint8 face crops
        (N, S, S) with S = :attr:`input_size`, all in one batch of up to ``batch_size``."""
        return self.engine.predict_probs(crops, tta=self.tta, batch_size=self.batch_size)

    def iter_predict(
        self, sources: Iterable[ImageSource], *, color_order: ColorOrder = "rgb"
    ) -> Iterator[ImageResult]:
        """One :class:`ImageResult` per source, as each is done; a source that cannot be read
        gives a result with ``error`` set and the others go on."""
        for source in sources:
            name = describe_source(source)
            try:
                faces = self.predict(source, color_order=color_order)
            except InceptionFerError as error:
                yield ImageResult(name, [], str(error))
            else:
                yield ImageResult(name, faces)

    def predict_batch(
        self, sources: Iterable[ImageSource], *, color_order: ColorOrder = "rgb"
    ) -> list[ImageResult]:
        """:meth:`iter_predict` as a list: every source gets a result, readable or not."""
        return list(self.iter_predict(sources, color_order=color_order))


def _is_onnx_file(model: ModelSpec) -> bool:
    return not isinstance(model, Checkpoint) and Path(model).suffix.lower() == ".onnx"


def _prediction(face: Face, probs: np.ndarray, classes: tuple[str, ...]) -> FacePrediction:
    landmarks = None
    if face.landmarks is not None:
        landmarks = tuple((float(x), float(y)) for x, y in face.landmarks)
    return FacePrediction(
        box=(face.x, face.y, face.w, face.h),
        score=face.score,
        probabilities={name: float(p) for name, p in zip(classes, probs, strict=True)},
        landmarks=landmarks,
    )
