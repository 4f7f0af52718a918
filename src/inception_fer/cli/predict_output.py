"""How ``inception-fer predict`` prints its results: a table, JSON or CSV.

Photos give one line (or CSV row) per face. Videos give one per face per sampled frame, or with
``per_second`` one per second of video for its subject (the largest face).
"""

from __future__ import annotations

import csv
import json
import sys
from typing import TextIO

from ..inference.recognizer import FacePrediction, ImageResult
from ..inference.video import VideoResult

Result = ImageResult | VideoResult


def print_json(results: list[Result], classes: tuple[str, ...], per_second: bool) -> None:
    """One JSON object per photo or video; a video's ``frames`` are left out with
    ``per_second``."""
    objects = []
    for r in results:
        obj = r.to_dict(classes) if isinstance(r, VideoResult) else r.to_dict()
        if per_second and isinstance(r, VideoResult):
            del obj["frames"]
        objects.append(obj)
    print(json.dumps(objects, indent=1))


def print_csv(results: list[Result], classes: tuple[str, ...], per_second: bool) -> None:
    """CSV on stdout. Per face: source, frame, time_s (empty for photos), face, box, score,
    emotion, probabilities. With ``per_second``, videos give a row per second instead: source,
    second, frames, frames_with_face, emotion, probabilities (photos are left out)."""
    writer = csv.writer(sys.stdout)
    if per_second:
        writer.writerow(["source", "second", "frames", "frames_with_face", "emotion", *classes])
        for r in results:
            if isinstance(r, VideoResult):
                for s in r.per_second(classes):
                    probs = ["" if s.probabilities is None else f"{s.probabilities[c]:.4f}"
                             for c in classes]  # fmt: skip
                    row = [r.source, s.second, s.frames, s.frames_with_face, s.emotion or ""]
                    writer.writerow([*row, *probs])
        return
    writer.writerow(
        ["source", "frame", "time_s", "face", "x", "y", "w", "h", "score", "emotion", *classes]
    )
    for r in results:
        frames = (
            [(str(f.index), f"{f.time_s:.3f}", f.faces) for f in r.frames]
            if isinstance(r, VideoResult)
            else [("", "", r.faces)]
        )
        for frame, time_s, faces in frames:
            for i, face in enumerate(faces):
                probs = [f"{face.probabilities[c]:.4f}" for c in classes]
                box = [f"{v:.1f}" for v in face.box]
                row = [r.source, frame, time_s, i, *box, f"{face.score:.3f}", face.emotion]
                writer.writerow([*row, *probs])


def print_table(results: list[Result], classes: tuple[str, ...], per_second: bool) -> None:
    """Human-readable lines: each face's box and top three emotions."""
    for r in results:
        if r.error:
            print(f"{r.source}: error: {r.error}")
        elif isinstance(r, VideoResult):
            _video_lines(r, classes, per_second, sys.stdout)
        elif not r.faces:
            print(f"{r.source}: no face found")
        for i, face in enumerate(r.faces if isinstance(r, ImageResult) else []):
            print(f"{r.source}: face {i} {_face_text(face)}")


def _video_lines(r: VideoResult, classes: tuple[str, ...], per_second: bool, out: TextIO) -> None:
    print(f"{r.source}: {r.frame_count} frames at {r.fps:.2f} fps, every {r.every}", file=out)
    if per_second:
        for s in r.per_second(classes):
            seen = f"({s.frames_with_face}/{s.frames} sampled frames with a face)"
            if s.probabilities is None:
                print(f"{r.source}: second {s.second}: no face {seen}", file=out)
                continue
            print(f"{r.source}: second {s.second}: {_top3(s.probabilities)} {seen}", file=out)
        return
    for f in r.frames:
        where = f"{r.source}: frame {f.index} ({f.time_s:.2f} s)"
        if not f.faces:
            print(f"{where}: no face found", file=out)
        for i, face in enumerate(f.faces):
            print(f"{where}: face {i} {_face_text(face)}", file=out)


def _face_text(face: FacePrediction) -> str:
    x, y, w, h = (round(v) for v in face.box)
    return f"at ({x}, {y}, {w}x{h}): {_top3(face.probabilities)}"


def _top3(probabilities: dict[str, float]) -> str:
    top = sorted(probabilities.items(), key=lambda kv: -kv[1])[:3]
    shown = ", ".join(f"{name} {p:.0%}" for name, p in top)
    return f"{top[0][0]}  [{shown}]"
