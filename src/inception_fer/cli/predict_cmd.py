"""``inception-fer predict``: the emotion of every face in photos, folders, videos and a webcam."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..atomic import atomic_write_bytes
from ..errors import InceptionFerError
from ..evaluation.tta import TTA_MODES
from ..faces import DEFAULT_DETECTOR, list_detectors
from ..inference.annotate import annotate
from ..inference.backends import BACKENDS
from ..inference.image_input import load_image
from ..inference.live import MatplotlibWindow, open_camera, run_live
from ..inference.recognizer import EmotionRecognizer, ImageResult
from ..inference.video import (
    VIDEO_SUFFIXES,
    FrameResult,
    VideoResult,
    is_video,
    open_video,
    predict_capture,
    video_fps,
)
from ..inference.video_output import annotated_video, plot_timeline
from .predict_output import Result, print_csv, print_json, print_table

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="find faces in photos and give each one's emotion",
        description="Detect the faces in photos and videos (files, or folders searched "
        "recursively) and print each face's box and emotion probabilities. An unreadable file or "
        "a photo with no face is reported and the rest go on.",
    )
    parser.add_argument("paths", nargs="*", type=Path, help="image or video files, or folders")
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
    parser.add_argument(
        "--backend", default="torch", choices=BACKENDS, help="inference engine (default torch)"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON (one object per image)")
    output.add_argument("--csv", action="store_true", help="print CSV (one row per face)")
    parser.add_argument(
        "--save-annotated",
        type=Path,
        metavar="DIR",
        help="write each photo (PNG) and video (MP4 of the sampled frames) with boxes and bars",
    )
    video = parser.add_argument_group("videos and webcam")
    video.add_argument(
        "--every", type=int, default=1, metavar="N", help="recognise every N-th frame (default 1)"
    )
    video.add_argument(
        "--per-second",
        action="store_true",
        help="report each second of video (its largest face, averaged) instead of each frame",
    )
    video.add_argument(
        "--timeline",
        type=Path,
        metavar="DIR",
        help="write a plot of each video's emotions over time to DIR/<name>.emotions.png",
    )
    video.add_argument(
        "--webcam",
        type=int,
        nargs="?",
        const=0,
        metavar="INDEX",
        help="live window on a camera (default index 0); close it or press q to stop",
    )
    parser.set_defaults(func=run)


def expand_paths(paths: list[Path]) -> Iterator[Path]:
    """Files as given; folders searched recursively for images, in sorted order."""
    suffixes = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes)
            if not found:
                raise InceptionFerError(f"no images or videos found in folder {path}")
            yield from found
        else:
            yield path


def sample_photo() -> Path:
    """matplotlib's bundled portrait of Grace Hopper (512x600, one face)."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def run(args: argparse.Namespace) -> int:
    if args.every < 1:
        raise InceptionFerError(f"--every must be at least 1 frame, got {args.every}")
    paths = [*args.paths, *([sample_photo()] if args.sample else [])]
    if not paths and args.webcam is None:
        raise InceptionFerError("give image or video files or folders to predict on (or --sample)")
    files = list(expand_paths(paths))
    capture = None if args.webcam is None else open_camera(args.webcam)
    recognizer = EmotionRecognizer(
        model=args.model,
        detector=args.detector,
        tta=args.tta,
        device=args.device,
        backend=args.backend,
    )
    if capture is not None:
        return _run_webcam(recognizer, capture, args)
    results: list[Result] = []
    progress = tqdm(files, unit="file", disable=len(files) < 2, file=sys.stderr)
    for index, file in enumerate(progress):
        if is_video(file):
            results.append(_predict_video_file(recognizer, file, args))
        else:
            results.append(_predict_file(recognizer, file, args.save_annotated, index))
    printer = print_json if args.json else print_csv if args.csv else print_table
    printer(results, recognizer.classes, args.per_second)
    failed = sum(not r.ok for r in results)
    return 1 if failed == len(results) else 0


def _run_webcam(
    recognizer: EmotionRecognizer, capture: cv2.VideoCapture, args: argparse.Namespace
) -> int:
    try:
        window = MatplotlibWindow(f"inception-fer: camera {args.webcam}")
        try:
            shown = run_live(recognizer, capture, window, every=args.every)
        finally:
            window.close()
    finally:
        capture.release()
    print(f"camera {args.webcam}: {shown} frames shown", file=sys.stderr)
    return 0


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


def _predict_video_file(
    recognizer: EmotionRecognizer, file: Path, args: argparse.Namespace
) -> VideoResult:
    """One video, with a progress bar over its frames; the annotated video and timeline plot
    are written where asked. An unreadable video gives a result with ``error`` set."""
    try:
        with open_video(file) as capture:
            fps, total = video_fps(capture), int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            bar = tqdm(total=max(total, 0) // args.every or None, unit="frame", leave=False,
                       desc=file.name, file=sys.stderr)  # fmt: skip
            with bar:
                if args.save_annotated is None:
                    result = predict_capture(
                        recognizer, capture, file, args.every, lambda _f, _r: bar.update()
                    )
                else:
                    target = args.save_annotated / f"{file.stem}.annotated.mp4"
                    with annotated_video(target, fps, args.every) as writer:

                        def on_frame(frame: np.ndarray, frame_result: FrameResult) -> None:
                            writer(frame, frame_result)
                            bar.update()

                        result = predict_capture(recognizer, capture, file, args.every, on_frame)
    except InceptionFerError as error:
        return VideoResult(str(file), every=args.every, error=str(error))
    if args.timeline is not None:
        plot_timeline(result, recognizer.classes, args.timeline / f"{file.stem}.emotions.png")
    return result
