"""Photo and video inference speed: ms per 640x480 photo (decode, detection, classification) with
1 face and with 6 faces, and frames/s on a 640x480 video.

Usage: ``python benchmarks/predict.py [--photos DIR] [--model NAME] [--detector NAME]
[--repeats N] [--video-frames N] [--threads N] [--json PATH]``. The photos are the shared
``kate_siegel.jpg`` (1 face) and ``multiface.jpg`` (6 faces), each scaled to fit 640x480 on a gray
canvas and JPEG-encoded in memory, so decoding is part of the time. Each stage's time is the median
over ``--repeats`` runs after a warm-up. The video is the 1-face photo drifting across a 640x480
frame, written with OpenCV (MJPG), read and recognised frame by frame.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from inception_fer.atomic import atomic_write_text
from inception_fer.inference import EmotionRecognizer, crop_faces, load_image
from inception_fer.inference.video import predict_video

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = REPO_ROOT.parent / "shared" / "data" / "photos"
PHOTOS = {"1 face": ("kate_siegel.jpg", 1), "6 faces": ("multiface.jpg", 6)}
WIDTH, HEIGHT = 640, 480


def letterbox(image: np.ndarray) -> np.ndarray:
    """``image`` scaled to fit 640x480, centred on a gray canvas."""
    scale = min(WIDTH / image.shape[1], HEIGHT / image.shape[0])
    w, h = round(image.shape[1] * scale), round(image.shape[0] * scale)
    canvas = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    x, y = (WIDTH - w) // 2, (HEIGHT - h) // 2
    canvas[y : y + h, x : x + w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return canvas


def time_stages(recognizer: EmotionRecognizer, jpeg: bytes, repeats: int) -> dict[str, float]:
    """Median ms of each stage on one JPEG, and the number of faces found."""
    stages: dict[str, list[float]] = {"decode": [], "detect": [], "classify": [], "total": []}
    faces_found = 0
    for run in range(repeats + 1):
        t0 = time.perf_counter()
        image = load_image(jpeg)
        t1 = time.perf_counter()
        faces = recognizer.detector.detect(image)
        t2 = time.perf_counter()
        crops = crop_faces(image, faces, size=recognizer.input_size,
                           margin=recognizer.margin, align=recognizer.align)  # fmt: skip
        recognizer.predict_faces(crops)
        t3 = time.perf_counter()
        if run == 0:  # warm-up
            faces_found = len(faces)
            continue
        for name, seconds in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
            stages[name].append(1000 * seconds)
    result = {name: statistics.median(times) for name, times in stages.items()}
    result["faces"] = faces_found
    return result


def video_fps(recognizer: EmotionRecognizer, photo: np.ndarray, frames: int) -> float:
    """Frames/s of :func:`predict_video` on a ``frames``-long 640x480 MJPG clip of ``photo``."""
    face = cv2.resize(photo, (WIDTH // 2, HEIGHT // 2 + 120), interpolation=cv2.INTER_AREA)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 25, (WIDTH, HEIGHT))
        for i in range(frames):
            frame = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
            x = round((WIDTH - face.shape[1]) * (0.5 + 0.4 * np.sin(i / 10)))
            frame[60 : 60 + face.shape[0], x : x + face.shape[1]] = face
            writer.write(frame)
        writer.release()
        predict_video(recognizer, path, every=max(frames // 5, 1))  # warm-up
        start = time.perf_counter()
        result = predict_video(recognizer, path)
        elapsed = time.perf_counter() - start
    return len(result.frames) / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="shared photos folder")
    parser.add_argument("--model", default="default", help="shipped model, checkpoint or run")
    parser.add_argument("--detector", default="mtcnn", help="face detector (default mtcnn)")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per photo (median)")
    parser.add_argument("--video-frames", type=int, default=100, help="frames of the test video")
    parser.add_argument("--threads", type=int, default=None, help="torch and OpenCV threads")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    recognizer = EmotionRecognizer(model=args.model, detector=args.detector)
    print(f"model {args.model}, detector {args.detector}, threads: torch "
          f"{torch.get_num_threads()}, OpenCV {cv2.getNumThreads()}")  # fmt: skip
    print(f"{'photo (640x480)':<16} {'faces':>5} {'decode':>8} {'detect':>8} {'classify':>9} "
          f"{'total ms':>9}")  # fmt: skip
    figures: dict[str, object] = {"model": args.model, "detector": args.detector}
    first_photo = None
    for label, (name, true_count) in PHOTOS.items():
        image = cv2.imread(str(args.photos / name))
        if image is None:
            parser.error(f"{args.photos / name} is missing: give --photos")
        first_photo = image if first_photo is None else first_photo
        _, jpeg = cv2.imencode(".jpg", letterbox(image), [cv2.IMWRITE_JPEG_QUALITY, 90])
        stages = time_stages(recognizer, jpeg.tobytes(), args.repeats)
        figures[label] = stages
        mark = "" if stages["faces"] == true_count else f"  (expected {true_count})"
        print(f"{label:<16} {stages['faces']:>5.0f} {stages['decode']:>8.1f} "
              f"{stages['detect']:>8.1f} {stages['classify']:>9.1f} {stages['total']:>9.1f}{mark}")  # fmt: skip
    assert first_photo is not None
    fps = video_fps(recognizer, first_photo, args.video_frames)
    figures["video_fps"] = fps
    print(f"video 640x480, 1 face, every frame: {fps:.1f} frames/s")
    if args.json:
        atomic_write_text(args.json, json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
