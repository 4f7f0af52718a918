"""Face detectors on real photos: faces found against the true count, and ms per 640x480 photo.

Usage: ``python benchmarks/face_detection.py [--photos DIR] [--repeats N] [--threads N]
[--detector NAME ...] [--yunet-model PATH]``. The photos are the shared ones (see their README)
plus those scikit-image and matplotlib ship. Counts are on each photo as it is (each detector
downscales big photos itself); the time is the median over ``--repeats`` runs on the photo resized
to 640x480.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import torch

from inception_fer.errors import InceptionFerError
from inception_fer.faces import create_detector

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = REPO_ROOT.parent / "shared" / "data" / "photos"
SHARED_COUNTS = {
    "multiface.jpg": 6,
    "angelina_jolie.jpg": 1,
    "kate_siegel.jpg": 1,
    "paul_rudd.jpg": 1,
}


def load_photos(folder: Path) -> dict[str, tuple[np.ndarray, int]]:
    """BGR photos by name with their true face counts; the ones that are absent are skipped."""
    photos = {}
    for name, count in SHARED_COUNTS.items():
        image = cv2.imread(str(folder / name))
        if image is not None:
            photos[name] = (image, count)
    try:
        import skimage.data

        photos["astronaut"] = (cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR), 1)
        photos["camera"] = (cv2.cvtColor(skimage.data.camera(), cv2.COLOR_GRAY2BGR), 1)
    except ImportError:
        print("scikit-image is not installed: astronaut and camera skipped")
    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    image = cv2.imread(str(hopper))
    if image is not None:
        photos["grace_hopper.jpg"] = (image, 1)
    return photos


def time_ms(detect: Callable[[np.ndarray], object], image: np.ndarray, repeats: int) -> float:
    """Median wall time of ``detect(image)`` in ms, after one warm-up call."""
    detect(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        detect(image)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--photos", type=Path, default=DEFAULT_PHOTOS, help="shared photos folder (%(default)s)"
    )
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per photo (median)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch and OpenCV threads (default: theirs)"
    )
    parser.add_argument(
        "--detector",
        action="append",
        default=None,
        help="detector name, repeatable (default: mtcnn and haar, plus yunet with --yunet-model)",
    )
    parser.add_argument("--yunet-model", type=Path, default=None, help="a YuNet .onnx file")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    names = args.detector or ["mtcnn", "haar"] + (["yunet"] if args.yunet_model else [])
    photos = load_photos(args.photos)
    print(f"threads: torch {torch.get_num_threads()}, OpenCV {cv2.getNumThreads()}")
    print(
        f"{'detector':<9} {'photo':<20} {'size':>10} {'faces':>5} {'true':>4}  {'ms@640x480':>10}"
    )
    for name in names:
        options = {"model_path": args.yunet_model} if name == "yunet" else {}
        try:
            detector = create_detector(name, **options)
        except InceptionFerError as error:
            parser.error(str(error))
        right, times = 0, []
        for photo, (image, count) in photos.items():
            found = len(detector.detect(image))
            small = cv2.resize(image, (640, 480), interpolation=cv2.INTER_AREA)
            times.append(time_ms(detector.detect, small, args.repeats))
            right += found == count
            size = f"{image.shape[1]}x{image.shape[0]}"
            mark = "" if found == count else "  WRONG"
            print(
                f"{name:<9} {photo:<20} {size:>10} {found:>5} {count:>4}  {times[-1]:>10.1f}{mark}"
            )
        summary = f"{right}/{len(photos)} right counts"
        print(f"{name:<9} {summary:<42}  {statistics.median(times):>10.1f} (median)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
