"""Load test of ``inception-fer serve``: many clients POSTing a photo for a fixed time, on loopback.

Usage: ``python benchmarks/serve_load.py [--clients 50] [--duration 60] [--image PATH]
[--model NAME] [--threads N] [--max-rss-growth-mb 200]``. The server runs as a subprocess on
127.0.0.1 with ``--model`` (the shipped default model unless given); each client POSTs the photo
(scikit-image's astronaut as a JPEG unless ``--image``) as raw bytes in a loop. Prints
requests/s, p50/p99 latency, errors, and the server's resident memory before and after (after a
warm-up). Exits 1 on any error (a status other than 200, a transport error, or an answer with
another face count than the warm-up's) or when the server's memory grew by more than
``--max-rss-growth-mb``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from PIL import Image


@dataclass
class LoadResult:
    """Latencies (s) of the successful requests, and the failures by kind."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def astronaut_jpeg() -> bytes:
    """scikit-image's astronaut (512x512, one face) as JPEG bytes."""
    import skimage.data

    buffer = io.BytesIO()
    Image.fromarray(skimage.data.astronaut()).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_mb(pid: int) -> float:
    """The process's resident memory (VmRSS) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def start_server(log: Path, model: str, threads: int | None) -> tuple[subprocess.Popen[bytes], str]:
    """``inception-fer serve --model MODEL`` on a free loopback port, once /healthz answers."""
    port = free_port()
    command = [sys.executable, "-m", "inception_fer", "serve", "--host", "127.0.0.1"]
    command += ["--model", model, "--port", str(port), "--log-level", "warning"]
    if threads is not None:
        command += ["--threads", str(threads)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"the server did not start:\n{log.read_text()[-3000:]}")


async def client_loop(
    http: httpx.AsyncClient, image: bytes, faces: int, deadline: float, result: LoadResult
) -> None:
    """POST ``image`` until ``deadline``, recording each request's latency or failure."""
    headers = {"content-type": "image/jpeg"}
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        try:
            response = await http.post("/v1/predict", content=image, headers=headers)
        except httpx.HTTPError as error:
            result.errors[type(error).__name__] += 1
            continue
        if response.status_code != 200:
            result.errors[f"HTTP {response.status_code}"] += 1
        elif len(response.json()["faces"]) != faces:
            result.errors["wrong face count"] += 1
        else:
            result.latencies.append(time.perf_counter() - start)


async def run_load(url: str, image: bytes, clients: int, duration: float) -> LoadResult:
    """``clients`` concurrent loops for ``duration`` seconds, after a warm-up request."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        warm = await http.post("/v1/predict", content=image, headers={"content-type": "image/jpeg"})
        warm.raise_for_status()
        faces = len(warm.json()["faces"])
        result = LoadResult()
        start = time.perf_counter()
        deadline = start + duration
        await asyncio.gather(
            *(client_loop(http, image, faces, deadline, result) for _ in range(clients))
        )
        result.seconds = time.perf_counter() - start
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--image", type=Path, help="photo to send (default: the astronaut)")
    parser.add_argument("--model", default="default", help="shipped model, checkpoint or run")
    parser.add_argument("--threads", type=int, help="the server's --threads (default: torch's)")
    parser.add_argument(
        "--max-rss-growth-mb",
        type=float,
        default=200.0,
        help="fail when the server's resident memory grows by more than this (MiB)",
    )
    args = parser.parse_args(argv)
    image = args.image.read_bytes() if args.image else astronaut_jpeg()
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "server.log"
        process, url = start_server(log, args.model, args.threads)
        try:
            asyncio.run(run_load(url, image, 1, 0.0))  # first requests allocate the buffers
            before = rss_mb(process.pid)
            result = asyncio.run(run_load(url, image, args.clients, args.duration))
            after = rss_mb(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)
    done = len(result.latencies)
    p50, p99 = (np.percentile(result.latencies, [50, 99]) * 1000) if done else (float("nan"),) * 2
    errors = sum(result.errors.values())
    growth = after - before
    print(f"clients {args.clients}, {result.seconds:.1f} s, image {len(image):,} bytes")
    print(f"requests ok    {done}  ({done / result.seconds:.1f}/s)")
    print(f"latency        p50 {p50:.0f} ms, p99 {p99:.0f} ms")
    print(f"errors         {errors}  {dict(result.errors) if errors else ''}".rstrip())
    limit = args.max_rss_growth_mb
    print(f"server RSS     {before:.0f} -> {after:.0f} MiB ({growth:+.0f} MiB, limit +{limit:g})")
    failed = errors > 0 or growth > limit or done == 0
    print("FAILED" if failed else "PASSED")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
