"""Carry an image-folder dataset to a lent GPU machine: pack its files into one ``.npz`` here,
unpack them there (the device tool sends the repository only, not ``../shared``).

    python experiments/devdata.py pack ../shared/data/fer2013 .devdata/fer_jpegs.npz
    python experiments/devdata.py unpack .devdata/fer_jpegs.npz /tmp/fer2013
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def pack(folder: Path, archive: Path) -> None:
    """Every file under ``folder``: one byte blob, the end offset of each file, and the files'
    relative paths (one per line); stored uncompressed (JPEGs do not compress)."""
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    if not files:
        raise SystemExit(f"no files under {folder}")
    contents = [path.read_bytes() for path in files]
    names = "\n".join(str(path.relative_to(folder)) for path in files)
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".partial.npz")
    np.savez(
        partial,
        blob=np.frombuffer(b"".join(contents), dtype=np.uint8),
        ends=np.cumsum([len(content) for content in contents]),
        names=np.frombuffer(names.encode(), dtype=np.uint8),
    )
    partial.replace(archive)
    print(f"packed {len(files)} files into {archive}")


def unpack(archive: Path, folder: Path) -> None:
    """Write the files of ``archive`` back under ``folder``."""
    with np.load(archive) as arrays:
        blob, ends = arrays["blob"].tobytes(), arrays["ends"].tolist()
        names = arrays["names"].tobytes().decode().split("\n")
    for name, start, end in zip(names, [0, *ends[:-1]], ends, strict=True):
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob[start:end])
    print(f"unpacked {len(names)} files into {folder}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("pack", "unpack"))
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    args = parser.parse_args()
    (pack if args.action == "pack" else unpack)(args.source, args.target)


if __name__ == "__main__":
    main()
