"""``inception-fer predict`` on real photos, folders and bad files (structure, any model)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import PHOTOS_DIR
from inception_fer.classes import EMOTIONS
from inception_fer.cli.main import main


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    if not (PHOTOS_DIR / "multiface.jpg").is_file():
        pytest.skip(f"shared photos not found at {PHOTOS_DIR}")
    folder = tmp_path / "photos" / "nested"
    folder.mkdir(parents=True)
    shutil.copy(PHOTOS_DIR / "multiface.jpg", folder / "group.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    cv2.imwrite(str(folder / "blank.png"), np.full((120, 160, 3), 128, np.uint8))
    return tmp_path / "photos"


def test_folder_with_bad_files_completes(photos: Path, checkpoint: Path, tmp_path: Path,
                                         capsys) -> None:  # fmt: skip
    out = tmp_path / "annotated"
    code = main(["predict", str(photos), "--model", str(checkpoint), "--json",
                 "--save-annotated", str(out)])  # fmt: skip
    assert code == 0
    results = {Path(r["source"]).name: r for r in json.loads(capsys.readouterr().out)}
    assert len(results["group.jpg"]["faces"]) == 6
    assert results["blank.png"]["faces"] == [] and results["blank.png"]["error"] is None
    assert "broken.jpg" in results["broken.jpg"]["error"]
    face = results["group.jpg"]["faces"][0]
    assert list(face["probabilities"]) == list(EMOTIONS)
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    drawn = cv2.imread(str(out / "group.annotated.png"))
    original = cv2.imread(str(photos / "nested" / "group.jpg"))
    assert drawn.shape == original.shape
    x, y, w, _ = (round(v) for v in face["box"])
    assert np.abs(drawn.astype(int) - original.astype(int)).sum() > 0
    # The box outline is drawn where the face is.
    assert (drawn[y, x : x + w] != original[y, x : x + w]).any()


def test_csv_and_text_output(photos: Path, checkpoint: Path, capsys) -> None:
    group = str(photos / "nested" / "group.jpg")
    assert main(["predict", group, "--model", str(checkpoint), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 6 and set(EMOTIONS) <= set(rows[0])
    assert main(["predict", group, str(photos / "nested" / "blank.png"),
                 "--model", str(checkpoint)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert text.count(": face ") == 6 and "blank.png: no face found" in text


def test_only_bad_files_fails(tmp_path: Path, checkpoint: Path, capsys) -> None:
    bad = tmp_path / "x.jpg"
    bad.write_text("hello")
    assert main(["predict", str(bad), "--model", str(checkpoint)]) == 1
    assert "x.jpg: error:" in capsys.readouterr().out


def test_empty_folder_is_a_clear_error(tmp_path: Path, checkpoint: Path, capsys) -> None:
    assert main(["predict", str(tmp_path), "--model", str(checkpoint)]) == 2
    assert "no images or videos found in folder" in capsys.readouterr().err


def test_sample_photo_and_no_input(checkpoint: Path, tmp_path: Path, capsys) -> None:
    assert main(["predict", "--sample", "--model", str(checkpoint), "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["source"].endswith("grace_hopper.jpg") and len(result["faces"]) == 1
    assert main(["predict", "--model", str(checkpoint)]) == 2
    assert "give image or video files or folders" in capsys.readouterr().err


def test_onnx_backend_gives_the_same_answer(checkpoint: Path, capsys) -> None:
    results = {}
    for backend in ("torch", "onnx"):
        argv = ["predict", "--sample", "--model", str(checkpoint), "--json", "--backend", backend]
        assert main(argv) == 0
        (results[backend],) = json.loads(capsys.readouterr().out)
    (torch_face,), (onnx_face,) = results["torch"]["faces"], results["onnx"]["faces"]
    assert onnx_face["box"] == torch_face["box"]
    for name, p in torch_face["probabilities"].items():
        assert onnx_face["probabilities"][name] == pytest.approx(p, abs=1e-4)
