"""The REST service over real HTTP: ``inception-fer serve`` in a subprocess with the shipped
model, and ``create_app`` on an in-process uvicorn (tiny model) for timeouts, CORS defaults and
disk use."""

from __future__ import annotations

import base64
import io
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import uvicorn
from PIL import Image

from inception_fer.classes import EMOTIONS
from inception_fer.inference import EmotionRecognizer
from inception_fer.pretrained import DEFAULT_MODEL
from inception_fer.serve import create_app

skimage_data = pytest.importorskip(
    "skimage.data", reason="scikit-image (a test dependency) is absent"
)

ALLOWED_ORIGIN = "http://allowed.test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(
    url: str, alive: Callable[[], bool], log: Path | None = None, limit_s: float = 90
) -> None:
    """Poll ``url``/healthz until it answers 200; fail with the server's log if it dies first."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if not alive():
            output = log.read_text() if log is not None else ""
            pytest.fail(f"the server exited before it was ready:\n{output}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the server at {url} was not ready within {limit_s:g} s")


def start_cli_server(log: Path, *options: str) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m inception_fer serve`` on a free loopback port, once /healthz answers."""
    port = free_port()
    command = [sys.executable, "-m", "inception_fer", "serve", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--log-level", "warning", *options], stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, lambda: process.poll() is None, log)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process, url


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def astronaut_jpeg() -> bytes:
    """scikit-image's astronaut (512x512, one smiling face) as a JPEG file's bytes."""
    return jpeg(skimage_data.astronaut())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The CLI's server with the shipped model, 1 MiB uploads, 1 MP pictures and CORS for one
    origin."""
    log = tmp_path_factory.mktemp("serve") / "server.log"
    options = ["--max-upload-mb", "1", "--max-megapixels", "1", "--cors-origin", ALLOWED_ORIGIN]
    process, url = start_cli_server(log, *options)
    yield url
    stop(process)


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as http:
        yield http


def _check_happy_astronaut(result: dict) -> None:
    assert result["image"] == {"width": 512, "height": 512}
    (face,) = result["faces"]
    assert face["emotion"] == "happy"
    assert list(face["probabilities"]) == list(EMOTIONS)
    assert sum(face["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    x, y, w, h = face["box"]
    assert 150 < x + w / 2 < 300 and 60 < y + h / 2 < 180  # the astronaut's face, top centre
    assert face["score"] > 0.9 and len(face["landmarks"]) == 5
    assert {"decode", "inference", "queue"} <= set(result["timing_ms"])


def test_healthz_and_models(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/v1/models").json()
    assert info["model"]["name"] == DEFAULT_MODEL
    assert info["model"]["network"] == "ensemble"  # the default is two networks averaged
    assert info["model"]["classes"] == list(EMOTIONS)
    assert info["model"]["input_size"] == 48
    assert (info["model"]["backend"], info["model"]["detector"]) == ("torch", "mtcnn")
    assert DEFAULT_MODEL in info["pretrained"]["shipped"]
    assert info["limits"]["max_upload_bytes"] == 2**20
    assert info["limits"]["max_pixels"] == 1_000_000


def test_predict_multipart_finds_the_happy_astronaut(
    client: httpx.Client, astronaut_jpeg: bytes
) -> None:
    response = client.post(
        "/v1/predict", files={"file": ("astronaut.jpg", astronaut_jpeg, "image/jpeg")}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["filename"] == "astronaut.jpg"
    assert "annotated_png" not in result
    assert result["timing_ms"]["total"] >= result["timing_ms"]["inference"] > 0
    _check_happy_astronaut(result)


@pytest.mark.parametrize("media", ["image/jpeg", "application/octet-stream"])
def test_predict_raw_bytes_gives_the_multipart_answer(
    client: httpx.Client, astronaut_jpeg: bytes, media: str
) -> None:
    files = {"file": ("a.jpg", astronaut_jpeg, "image/jpeg")}
    multipart = client.post("/v1/predict", files=files).json()
    raw = client.post("/v1/predict", content=astronaut_jpeg, headers={"content-type": media})
    assert raw.status_code == 200, raw.text
    _check_happy_astronaut(raw.json())
    assert raw.json()["filename"] is None
    assert raw.json()["faces"][0]["probabilities"] == pytest.approx(
        multipart["faces"][0]["probabilities"], abs=1e-6
    )


def test_annotated_adds_a_png_with_the_box_drawn(
    client: httpx.Client, astronaut_jpeg: bytes
) -> None:
    response = client.post(
        "/v1/predict",
        params={"annotated": "true"},
        content=astronaut_jpeg,
        headers={"content-type": "image/jpeg"},
    )
    assert response.status_code == 200, response.text
    result = response.json()
    png = base64.b64decode(result["annotated_png"])
    assert png.startswith(b"\x89PNG")
    drawn = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    plain = cv2.imdecode(np.frombuffer(astronaut_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert drawn.shape == plain.shape == (512, 512, 3)
    x, y, _, h = (round(v) for v in result["faces"][0]["box"])
    assert drawn[y + h // 2, x].tolist() == [60, 200, 60]  # the box's left edge, annotate's green
    assert np.array_equal(drawn[400:], plain[400:])  # below the face and its bars: untouched


def test_batch_answers_each_file_and_reports_the_bad_ones(
    client: httpx.Client, astronaut_jpeg: bytes
) -> None:
    files = [
        ("files", ("astronaut.jpg", astronaut_jpeg, "image/jpeg")),
        ("files", ("notes.txt", b"not a picture", "text/plain")),
        ("files", ("cut.jpg", astronaut_jpeg[: len(astronaut_jpeg) // 2], "image/jpeg")),
        ("files", ("again.jpg", astronaut_jpeg, "image/jpeg")),
    ]
    response = client.post("/v1/predict/batch", files=files)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["filename"] for r in results] == [
        "astronaut.jpg",
        "notes.txt",
        "cut.jpg",
        "again.jpg",
    ]
    assert [r["ok"] for r in results] == [True, False, False, True]
    assert response.json()["timing_ms"]["total"] > 0
    _check_happy_astronaut(results[0])
    _check_happy_astronaut(results[3])
    assert results[1]["status"] == 422 and "not an image" in results[1]["error"]
    assert results[2]["status"] == 422 and "truncated" in results[2]["error"]


def test_wrong_content_type_is_415(client: httpx.Client, astronaut_jpeg: bytes) -> None:
    text = client.post("/v1/predict", content=b"hello", headers={"content-type": "text/plain"})
    assert text.status_code == 415
    assert "'text/plain'" in text.json()["detail"] and "image/*" in text.json()["detail"]
    assert client.post("/v1/predict", content=astronaut_jpeg).status_code == 415  # no type
    batch = client.post(
        "/v1/predict/batch", content=astronaut_jpeg, headers={"content-type": "image/jpeg"}
    )
    assert batch.status_code == 415 and "'files'" in batch.json()["detail"]


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (lambda data: b"plain text, no picture", "the upload (22 bytes) is not an image Pillow"),
        (lambda data: data[: len(data) // 2], "truncated or corrupt"),
        (lambda data: b"", "empty"),
    ],
    ids=["text", "truncated-jpeg", "empty"],
)
def test_undecodable_upload_is_422_with_the_decoder_message(
    client: httpx.Client, astronaut_jpeg: bytes, cut, message: str
) -> None:
    body = cut(astronaut_jpeg)
    response = client.post("/v1/predict", content=body, headers={"content-type": "image/jpeg"})
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_form_without_file_field_is_422_and_broken_multipart_400(
    client: httpx.Client, astronaut_jpeg: bytes
) -> None:
    response = client.post("/v1/predict", files={"photo": ("a.jpg", astronaut_jpeg)})
    assert response.status_code == 422
    assert "'file'" in response.json()["detail"] and "'photo'" in response.json()["detail"]
    cut = b'--xyz\r\nContent-Disposition: form-data; name="file"\r\n\r\n' + astronaut_jpeg[:99]
    headers = {"content-type": "multipart/form-data; boundary=xyz"}
    broken = client.post("/v1/predict", content=cut, headers=headers)
    assert broken.status_code == 400 and "closing boundary" in broken.json()["detail"]


def test_upload_over_the_limit_is_413_with_or_without_content_length(
    client: httpx.Client,
) -> None:
    big = b"\xff" * (2**20 + 1)
    declared = client.post("/v1/predict", content=big, headers={"content-type": "image/jpeg"})
    assert declared.status_code == 413
    assert "1,048,577 bytes" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        for _ in range(3):
            yield b"\xff" * 400_000

    streamed = client.post("/v1/predict", content=chunks(), headers={"content-type": "image/png"})
    assert streamed.status_code == 413
    assert "over this server's limit of 1,048,576 bytes" in streamed.json()["detail"]
    assert client.get("/healthz").status_code == 200


def test_picture_over_the_pixel_limit_is_413(client: httpx.Client) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (1200, 1000), (90, 120, 150)).save(buffer, "PNG")  # 1.2 MP, a few KB
    response = client.post(
        "/v1/predict", content=buffer.getvalue(), headers={"content-type": "image/png"}
    )
    assert response.status_code == 413
    assert "1200x1000" in response.json()["detail"] and "1 MP" in response.json()["detail"]


def test_cors_only_for_the_allowed_origin(client: httpx.Client) -> None:
    allowed = client.get("/v1/models", headers={"origin": ALLOWED_ORIGIN})
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    other = client.get("/v1/models", headers={"origin": "http://elsewhere.test"})
    assert "access-control-allow-origin" not in other.headers
    preflight = client.options(
        "/v1/predict",
        headers={"origin": ALLOWED_ORIGIN, "access-control-request-method": "POST"},
    )
    assert (
        preflight.status_code == 200 and "POST" in preflight.headers["access-control-allow-methods"]
    )


def test_page_openapi_and_docs(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert 'id="file"' in page.text and "/v1/predict" in page.text
    external = re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|url\(|@import""", page.text)
    assert not external  # self-contained: no CDN, no external script, style or font
    spec = client.get("/openapi.json").json()
    assert {"/healthz", "/v1/models", "/v1/predict", "/v1/predict/batch"} <= set(spec["paths"])
    body = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "image/*"} <= set(body)
    assert client.get("/docs").status_code == 200


# In-process servers (create_app on uvicorn in a thread) with a tiny untrained model.


class SlowRecognizer(EmotionRecognizer):
    """A recognizer that takes ``delay`` seconds per picture."""

    delay = 0.0

    def predict_bgr(self, image_bgr: np.ndarray):  # type: ignore[override]
        time.sleep(self.delay)
        return super().predict_bgr(image_bgr)


def _serve_in_thread(app) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, thread.is_alive, limit_s=20)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def plain_app_url(checkpoint: Path) -> Iterator[str]:
    """``create_app`` with every default: 20 MiB uploads, 30 s timeout, no CORS."""
    yield from _serve_in_thread(create_app(SlowRecognizer(checkpoint, detector="haar")))


@pytest.fixture(scope="module")
def slow_app_url(checkpoint: Path) -> Iterator[str]:
    """A 0.3 s request timeout over a recognizer that takes 1 s per picture."""
    slow = SlowRecognizer(checkpoint, detector="haar")
    slow.delay = 1.0
    yield from _serve_in_thread(create_app(slow, request_timeout_s=0.3))


def test_cors_is_off_by_default(plain_app_url: str) -> None:
    response = httpx.get(f"{plain_app_url}/v1/models", headers={"origin": ALLOWED_ORIGIN})
    assert response.status_code == 200
    assert not any(name.startswith("access-control-") for name in response.headers)


def test_docs_use_only_local_swagger_ui_assets(plain_app_url: str) -> None:
    docs = httpx.get(f"{plain_app_url}/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in docs.headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-inline'" in docs.headers["content-security-policy"]
    assert not re.search(r"https?:|//", docs.text)  # no CDN, no absolute URL at all
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*["']([^"']+)["']""", docs.text)
    assert "/openapi.json" in urls
    expected = {
        "/docs-static/swagger-ui-bundle.js": "javascript",
        "/docs-static/swagger-ui.css": "text/css",
        "/docs-static/favicon.png": "image/png",
    }
    assert set(urls) == {"/openapi.json", *expected}
    for url, media in expected.items():
        asset = httpx.get(f"{plain_app_url}{url}")
        assert asset.status_code == 200 and media in asset.headers["content-type"], url
    bundle = httpx.get(f"{plain_app_url}/docs-static/swagger-ui-bundle.js").text
    assert re.search(r'PACKAGE_VERSION:"5\.', bundle)  # 4.x cannot render OpenAPI 3.1
    assert httpx.get(f"{plain_app_url}/openapi.json").json()["openapi"].startswith("3.1")
    assert httpx.get(f"{plain_app_url}/redoc").status_code == 404  # FastAPI's loads a CDN


def test_batch_needs_files_fields_and_at_most_16(plain_app_url: str) -> None:
    url = f"{plain_app_url}/v1/predict/batch"
    missing = httpx.post(url, files={"file": ("a.jpg", b"x")})
    assert missing.status_code == 422 and "'files'" in missing.json()["detail"]
    many = httpx.post(url, files=[("files", (f"{i}.jpg", b"x")) for i in range(17)])
    assert many.status_code == 413 and "17 files" in many.json()["detail"]


def test_uploads_bigger_than_the_spool_threshold_never_touch_the_disk(
    plain_app_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_disk(*args: object, **kwargs: object):
        raise AssertionError("an upload was written to a temporary file")

    for name in ("TemporaryFile", "NamedTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, no_disk)
    noise = np.random.default_rng(0).integers(0, 256, (800, 800, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "PNG")
    assert len(buffer.getvalue()) > 1.5 * 2**20  # over Starlette's 1 MB spool threshold
    files = {"file": ("noise.png", buffer.getvalue(), "image/png")}
    response = httpx.post(f"{plain_app_url}/v1/predict", files=files, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["image"] == {"width": 800, "height": 800}


def test_slow_inference_is_503_with_retry_after(slow_app_url: str, astronaut_jpeg: bytes) -> None:
    start = time.monotonic()
    response = httpx.post(
        f"{slow_app_url}/v1/predict",
        content=astronaut_jpeg,
        headers={"content-type": "image/jpeg"},
        timeout=10,
    )
    assert response.status_code == 503
    assert "0.3 s request timeout" in response.json()["detail"]
    assert response.headers["retry-after"] == "1"
    assert time.monotonic() - start < 0.9  # answered at the timeout, not after the 1 s inference


def test_slow_upload_is_408(slow_app_url: str) -> None:
    def trickle() -> Iterator[bytes]:
        yield b"\xff\xd8"
        time.sleep(0.8)
        yield b"\xff\xd9"

    response = httpx.post(
        f"{slow_app_url}/v1/predict",
        content=trickle(),
        headers={"content-type": "image/jpeg"},
        timeout=10,
    )
    assert response.status_code == 408
    assert "not received" in response.json()["detail"]
