"""``GradCamExplainer``: the faces in a photo, each with a Grad-CAM map of its emotion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import InceptionFerError
from ..faces import DEFAULT_DETECTOR, Face, FaceDetector, create_detector
from ..inference.face_crop import DEFAULT_ALIGN, DEFAULT_MARGIN, crop_faces, crop_transform
from ..inference.recognizer import ModelSpec, resolve_checkpoint
from ..training.fit import resolve_device
from .gradcam import find_layer, grad_cam


@dataclass(frozen=True)
class FaceExplanation:
    """One face: its detection, gray crop (S, S), probabilities, the explained class, and the
    Grad-CAM map (S, S) in [0, 1] of that class over the crop; ``transform`` (2x3) takes photo
    pixels to crop pixels."""

    face: Face
    crop: np.ndarray
    probabilities: dict[str, float]
    target: str
    cam: np.ndarray
    transform: np.ndarray


class GradCamExplainer:
    """Finds faces like :class:`~inception_fer.inference.EmotionRecognizer` and explains each.

    ``model`` and ``detector`` are as for the recognizer; ``layer`` names the layer whose
    activations are weighed (default: the last feature map; see :func:`grad_cam`).
    """

    def __init__(
        self,
        model: ModelSpec = "default",
        detector: str | FaceDetector = DEFAULT_DETECTOR,
        layer: str | None = None,
        device: str = "cpu",
        margin: float = DEFAULT_MARGIN,
        align: bool = DEFAULT_ALIGN,
        **detector_kwargs: Any,
    ) -> None:
        self.checkpoint = resolve_checkpoint(model)
        self.detector = (
            detector
            if isinstance(detector, FaceDetector)
            else create_detector(detector, **detector_kwargs)
        )
        self.device = resolve_device(device)
        self.model = self.checkpoint.model.to(self.device).eval()
        if layer is not None:
            find_layer(self.model, layer)  # a wrong name fails here, before any photo is read
        self.layer, self.margin, self.align = layer, margin, align

    @property
    def classes(self) -> tuple[str, ...]:
        """The model's classes, in the order of its outputs."""
        return tuple(self.checkpoint.meta.class_names)

    def check_target(self, target: str | None) -> None:
        """Raise InceptionFerError unless ``target`` is None or one of :attr:`classes`."""
        if target is not None and target not in self.classes:
            raise InceptionFerError(
                f"unknown class {target!r}; this model's classes: {', '.join(self.classes)}"
            )

    def explain(self, image_bgr: np.ndarray, target: str | None = None) -> list[FaceExplanation]:
        """Every face of an HxWx3 uint8 BGR image, explained for ``target`` (a class name) or,
        by default, for its own predicted emotion."""
        self.check_target(target)
        faces = self.detector.detect(image_bgr)
        if not faces:
            return []
        meta = self.checkpoint.meta
        size = meta.input_size
        crops = crop_faces(image_bgr, faces, size=size, margin=self.margin, align=self.align)
        in_chans = int(meta.model_kwargs.get("in_chans", 1))
        batch = torch.from_numpy(np.repeat(crops[:, None], in_chans, axis=1)).to(self.device)
        x = (batch.float() / 255.0 - meta.mean) / meta.std
        targets = None
        if target is not None:
            targets = torch.full((len(faces),), self.classes.index(target), dtype=torch.long)
        cams, probs = grad_cam(self.model, x, targets, self.layer)
        explained = probs.argmax(dim=1) if targets is None else targets
        return [
            FaceExplanation(
                face=face,
                crop=crop,
                probabilities={c: float(p) for c, p in zip(self.classes, probs[i], strict=True)},
                target=self.classes[int(explained[i])],
                cam=cams[i].cpu().numpy(),
                transform=crop_transform(face, self.margin, self.align, size),
            )
            for i, (face, crop) in enumerate(zip(faces, crops, strict=True))
        ]
