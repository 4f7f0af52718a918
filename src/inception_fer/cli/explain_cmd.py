"""``inception-fer explain``: Grad-CAM overlays showing what each face's emotion rests on."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from ..atomic import atomic_write_bytes
from ..errors import InceptionFerError
from ..explain import GradCamExplainer, heatmap_overlay, photo_overlay
from ..faces import DEFAULT_DETECTOR, list_detectors
from ..inference.image_input import load_image


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="write Grad-CAM overlays of each face's emotion",
        description="Find the faces in photos and write, for each photo, the photo with each "
        "face's Grad-CAM map (for its predicted emotion, or --target) blended in, and for each "
        "face its 48x48 crop beside the map.",
    )
    parser.add_argument("images", nargs="+", type=Path, help="photos to explain")
    parser.add_argument("--model", default="default", help="shipped model name, checkpoint or run")
    parser.add_argument(
        "--detector", default=DEFAULT_DETECTOR, choices=list_detectors(), help="face detector"
    )
    parser.add_argument(
        "--target", help="explain this emotion for every face (default: each face's prediction)"
    )
    parser.add_argument(
        "--layer",
        help="layer to weigh, as in model.named_modules() (default: the last feature map)",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument(
        "-o", "--out", type=Path, default=Path("explained"), help="output folder (./explained)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    explainer = GradCamExplainer(
        model=args.model, detector=args.detector, layer=args.layer, device=args.device
    )
    explainer.check_target(args.target)
    failed = 0
    for path in args.images:
        try:
            image = load_image(path)
        except InceptionFerError as error:
            print(f"{path}: error: {error}")
            failed += 1
            continue
        explained = explainer.explain(image, target=args.target)
        if not explained:
            print(f"{path}: no face found")
            continue
        cams = [e.cam for e in explained]
        overview = photo_overlay(image, cams, [e.transform for e in explained])
        for i, e in enumerate(explained):
            x, y, w, h = (round(v) for v in (e.face.x, e.face.y, e.face.w, e.face.h))
            cv2.rectangle(overview, (x, y), (x + w, y + h), (255, 255, 255), 2)
            cv2.putText(overview, f"{i}: {e.target}", (x, max(14, y - 6)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)  # fmt: skip
            face_file = _write_png(args.out / f"{path.stem}.face{i}.gradcam.png",
                                   heatmap_overlay(e.crop, e.cam))  # fmt: skip
            top = max(e.probabilities, key=e.probabilities.__getitem__)
            print(f"{path}: face {i} at ({x}, {y}, {w}x{h}): {top} "
                  f"{e.probabilities[top]:.0%}, explained {e.target} -> {face_file}")  # fmt: skip
        print(f"{path}: overlay -> {_write_png(args.out / f'{path.stem}.gradcam.png', overview)}")
    if failed:
        print(f"{failed} of {len(args.images)} images could not be read", file=sys.stderr)
    return 1 if failed == len(args.images) else 0


def _write_png(path: Path, image: np.ndarray) -> Path:
    ok, png = cv2.imencode(".png", image)
    if not ok:
        raise InceptionFerError(f"could not encode {path}")
    return atomic_write_bytes(path, png.tobytes())
