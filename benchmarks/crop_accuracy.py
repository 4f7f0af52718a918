"""Which face crop suits the network: accuracy of re-detected FER2013 faces by margin and alignment.

Usage: ``python benchmarks/crop_accuracy.py [--data DIR] [--limit N] [--model NAME]
[--detector NAME] [--margins 0,0.1,...] [--roll DEG]``. Each PublicTest face is scaled up 4x
(48 -> 192 px, cubic) and set in a 384x384 canvas of its own edge colours, so that a detector sees
a face in a photo; with ``--roll`` the photo is also turned by a random angle in [-DEG, DEG]
(seeded), as heads tilt in photos; the detector's largest face is then cropped with each margin,
with and without eye alignment, exactly as ``predict`` crops photos, and classified. Accuracy is
over the faces that were re-detected, beside the accuracy of the same faces given to the network as
FER2013 crops them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from inception_fer.data import load_fer
from inception_fer.faces import Face, create_detector
from inception_fer.inference import EmotionRecognizer, crop_faces

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "fer2013"
SCALE, CANVAS = 4, 384


def as_photo(face48: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """A 48x48 gray face as a BGR 384x384 'photo': upscaled 4x, centred, edges replicated,
    turned by ``roll`` degrees about its centre."""
    big = cv2.resize(face48, (48 * SCALE, 48 * SCALE), interpolation=cv2.INTER_CUBIC)
    pad = (CANVAS - big.shape[0]) // 2
    framed = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    if roll:
        matrix = cv2.getRotationMatrix2D((CANVAS / 2 - 0.5, CANVAS / 2 - 0.5), roll, 1.0)
        framed = cv2.warpAffine(framed, matrix, (CANVAS, CANVAS), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    return cv2.cvtColor(framed, cv2.COLOR_GRAY2BGR)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="FER2013 (any form)")
    parser.add_argument("--limit", type=int, default=None, help="first N PublicTest faces only")
    parser.add_argument("--model", default="default", help="shipped model, checkpoint or run")
    parser.add_argument("--detector", default="mtcnn", help="face detector (default mtcnn)")
    parser.add_argument(
        "--margins", default="0,0.05,0.1,0.2,0.3", help="comma-separated margins to try"
    )
    parser.add_argument(
        "--roll", type=float, default=0.0, help="turn each photo by a random angle up to DEG"
    )
    args = parser.parse_args(argv)
    margins = [float(m) for m in args.margins.split(",")]
    split = load_fer(args.data).val
    images, labels = split.images[: args.limit], split.labels[: args.limit]
    recognizer = EmotionRecognizer(model=args.model, detector=args.detector)
    detector = create_detector(args.detector)
    start = time.perf_counter()
    photos, faces, kept = [], [], []
    rolls = np.random.default_rng(0).uniform(-args.roll, args.roll, len(images))
    for i, face48 in enumerate(images):
        photo = as_photo(face48.reshape(48, 48), float(rolls[i]))
        found = detector.detect(photo)
        if found:
            photos.append(photo)
            faces.append(max(found, key=lambda f: f.w * f.h))
            kept.append(i)
    seconds = time.perf_counter() - start
    truth = labels[kept]
    print(f"{args.detector}: re-detected {len(kept)} of {len(images)} PublicTest faces "
          f"({seconds:.0f} s); model {args.model}; roll up to {args.roll} degrees")  # fmt: skip
    as_given = recognizer.predict_faces(images[kept].reshape(-1, 48, 48)).argmax(1)
    print(f"{'FER2013 crop as given (level)':<30} accuracy {np.mean(as_given == truth):.2%}")
    for align in (False, True):
        for margin in margins:
            crops = np.stack(
                [_crop(p, f, margin, align) for p, f in zip(photos, faces, strict=True)]
            )
            predicted = recognizer.predict_faces(crops).argmax(1)
            agree = np.mean(predicted == as_given)
            name = f"margin {margin:.2f}, align {'on' if align else 'off'}"
            print(f"{name:<30} accuracy {np.mean(predicted == truth):.2%}  "
                  f"(same answer as the FER2013 crop: {agree:.1%})")  # fmt: skip
    return 0


def _crop(photo: np.ndarray, face: Face, margin: float, align: bool) -> np.ndarray:
    return crop_faces(photo, [face], size=48, margin=margin, align=align)[0]


if __name__ == "__main__":
    raise SystemExit(main())
