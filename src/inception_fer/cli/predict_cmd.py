"""``inception-fer predict``: the emotion of every face in photos and folders of photos."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
from tqdm import tqdm

from ..atomic import atomic_write_bytes
from ..errors import InceptionFerError
from ..evaluation.tta import TTA_MODES
from ..faces import DEFAULT_DETECTOR, list_detectors
from ..inference.annotate import annotate
from ..inference.image_input import load_image
from ..inference.recognizer import EmotionRecognizer, ImageResult

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="find faces in photos and give each one's emotion",
        description="Detect the faces in photos (files, or folders searched recursively) and "
        "print each face's box and emotion probabilities. An unreadable file or a photo with no "
        "face is reported and the rest go on.",
    )
    parser.add_argument("paths", nargs="*", type=Path, help="image files or folders")
    parser.add_argument(
        "--sample",
        action="store_true",
        help="add the sample photo that matplotlib ships (grace_hopper.jpg): a try-out with no "
        "photo of your own",
    )
    parser.add_argument("--model", default="default", help="shipped model name, checkpoint or run")
    parser.add_argument(
        "--detector", default=DEFAULT_DETECTOR, choices=list_detectors(), help="face detector"
    )
    parser.add_argument("--tta", default="none", choices=TTA_MODES, help="test-time augmentation")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON (one object per image)")
    output.add_argument("--csv", action="store_true", help="print CSV (one row per face)")
    parser.add_argument(
        "--save-annotated", type=Path, metavar="DIR", help="write each photo with boxes and bars"
    )
    parser.set_defaults(func=run)


def expand_paths(paths: list[Path]) -> Iterator[Path]:
    """Files as given; folders searched recursively for images, in sorted order."""
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise InceptionFerError(f"no images found in folder {path}")
            yield from found
        else:
            yield path


def sample_photo() -> Path:
    """matplotlib's bundled portrait of Grace Hopper (512x600, one face)."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def run(args: argparse.Namespace) -> int:
    paths = [*args.paths, *([sample_photo()] if args.sample else [])]
    if not paths:
        raise InceptionFerError("give image files or folders to predict on (or --sample)")
    files = list(expand_paths(paths))
    recognizer = EmotionRecognizer(
        model=args.model, detector=args.detector, tta=args.tta, device=args.device
    )
    results: list[ImageResult] = []
    progress = tqdm(files, unit="image", disable=len(files) < 2, file=sys.stderr)
    for index, file in enumerate(progress):
        result = _predict_file(recognizer, file, args.save_annotated, index)
        results.append(result)
    _print(results, recognizer.classes, args)
    failed = sum(not r.ok for r in results)
    return 1 if failed == len(results) else 0


def _predict_file(
    recognizer: EmotionRecognizer, file: Path, annotated_dir: Path | None, index: int
) -> ImageResult:
    try:
        image = load_image(file)
        faces = recognizer.predict_bgr(image)
    except InceptionFerError as error:
        return ImageResult(str(file), [], str(error))
    if annotated_dir is not None:
        target = annotated_dir / f"{file.stem}.annotated.png"
        if target.exists() and index > 0:
            target = annotated_dir / f"{file.stem}.{index}.annotated.png"
        ok, png = cv2.imencode(".png", annotate(image, faces))
        if not ok:
            raise InceptionFerError(f"could not encode {target}")
        atomic_write_bytes(target, png.tobytes())
    return ImageResult(str(file), faces)


def _print(results: list[ImageResult], classes: tuple[str, ...], args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=1))
        return
    if args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["source", "face", "x", "y", "w", "h", "score", "emotion", *classes])
        for r in results:
            for i, face in enumerate(r.faces):
                probs = [f"{face.probabilities[c]:.4f}" for c in classes]
                box = [f"{v:.1f}" for v in face.box]
                writer.writerow([r.source, i, *box, f"{face.score:.3f}", face.emotion, *probs])
        return
    for r in results:
        if r.error:
            print(f"{r.source}: error: {r.error}")
        elif not r.faces:
            print(f"{r.source}: no face found")
        for i, face in enumerate(r.faces):
            x, y, w, h = (round(v) for v in face.box)
            top = sorted(face.probabilities.items(), key=lambda kv: -kv[1])[:3]
            shown = ", ".join(f"{name} {p:.0%}" for name, p in top)
            print(f"{r.source}: face {i} at ({x}, {y}, {w}x{h}): {face.emotion}  [{shown}]")
