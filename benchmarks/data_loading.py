"""Time ``load_fer``: first decode (empty cache) and cached load, on the shared FER2013.

Usage: ``python benchmarks/data_loading.py [--data PATH] [--repeats N]``. The cache goes to a fresh
temporary folder, removed at the end, so the first load always decodes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from inception_fer.data import FerData, load_fer

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "fer2013"


def timed_load(path: Path, cache_dir: Path) -> tuple[FerData, float]:
    start = time.perf_counter()
    data = load_fer(path, cache_dir=cache_dir)
    return data, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="dataset path (default: %(default)s)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="cached loads to time; the best is reported"
    )
    args = parser.parse_args()
    if not args.data.exists():
        parser.error(f"no dataset at {args.data}")
    with tempfile.TemporaryDirectory(prefix="inception-fer-bench-") as cache:
        data, first = timed_load(args.data, Path(cache))
        cached = min(timed_load(args.data, Path(cache))[1] for _ in range(args.repeats))
        cache_mb = sum(f.stat().st_size for f in Path(cache).iterdir()) / 1e6
    splits = {"train": data.train, "val": data.val, "test": data.test}
    counts = ", ".join(f"{name} {len(s)}" for name, s in splits.items() if s is not None)
    memory = sum(s.images.nbytes + s.labels.nbytes for s in splits.values() if s is not None)
    print(f"data:        {args.data} ({data.source})")
    print(f"images:      {counts} ({len(data.bad_files)} bad files)")
    print(f"first load:  {first:.2f} s (decode + cache write)")
    print(f"cached load: {cached:.2f} s (best of {args.repeats})")
    print(f"in memory:   {memory / 1e6:.1f} MB; cache file {cache_mb:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
