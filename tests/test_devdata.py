"""``experiments/devdata.py``: a folder packed into one ``.npz`` and unpacked elsewhere comes
back byte for byte, as the lent-GPU script relies on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "experiments" / "devdata.py"


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file()
    }


def _run(*args: object) -> None:
    subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], check=True, capture_output=True)


def test_pack_then_unpack_restores_every_file(tmp_path: Path) -> None:
    source = tmp_path / "fer"
    contents = {
        "train/happy/a.jpg": b"\xff\xd8jpeg-a",
        "train/sad/b.jpg": b"\x00\x01\x02",
        "test/happy/c.jpg": bytes(range(256)) * 3,
        "test/sad/empty.jpg": b"",
    }
    for name, data in contents.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    archive = tmp_path / "packed" / "fer.npz"
    _run("pack", source, archive)
    _run("unpack", archive, tmp_path / "unpacked")
    assert _files(tmp_path / "unpacked") == contents


def test_pack_refuses_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "pack", str(tmp_path / "empty"), str(tmp_path / "x.npz")],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "no files under" in result.stderr
    assert not (tmp_path / "x.npz").exists()
