"""The web page in headless Chromium against ``inception-fer serve``: upload, webcam and errors."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inception_fer.pretrained import DEFAULT_MODEL
from test_serve_http import jpeg, start_cli_server, stop

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (Debian's chromium package)"
)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
skimage_data = pytest.importorskip("skimage.data", reason="scikit-image is not installed")
expect = sync_api.expect


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = start_cli_server(tmp_path_factory.mktemp("serve") / "server.log")
    yield url
    stop(process)


@pytest.fixture(scope="module")
def playwright() -> Iterator[sync_api.Playwright]:
    with sync_api.sync_playwright() as driver:
        yield driver


def open_page(playwright: sync_api.Playwright, url: str, *extra_args: str):
    """A new browser's page at ``url``; its script errors are collected in ``page.errors``."""
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*ARGS, *extra_args])
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    expect(page.locator("#model")).to_contain_text(DEFAULT_MODEL)
    return browser, page, errors


def png_pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def test_upload_draws_the_photo_with_boxes_and_lists_the_happy_face(
    server: str, playwright: sync_api.Playwright, tmp_path: Path
) -> None:
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(jpeg(skimage_data.astronaut()))
    browser, page, errors = open_page(playwright, server)
    try:
        page.set_input_files("#file", photo)
        card = page.locator("#faces .face")
        expect(card).to_have_count(1, timeout=20_000)
        expect(card).to_have_attribute("data-emotion", "happy")
        expect(card.locator(".row")).to_have_count(7)
        expect(card.locator(".row.top")).to_contain_text("happy")
        expect(page.locator("#summary")).to_contain_text("512\u00d7512 px · 1 face")
        expect(page.locator("#canvas")).to_be_visible()
        page.screenshot(path=tmp_path / "page.png", full_page=True)
        canvas = png_pixels(page.locator("#canvas").screenshot())
    finally:
        browser.close()
    assert not errors
    screen = png_pixels((tmp_path / "page.png").read_bytes())
    assert screen.shape[0] >= 600 and screen.std() > 30  # a page with a photo, not a blank one
    assert canvas.shape[0] > 200 and canvas.std(axis=(0, 1)).min() > 20  # the photo, drawn
    green = np.abs(canvas - np.array([47, 158, 68])).max(axis=2) < 40  # the first face's colour
    assert green.sum() > 200  # its box and label


def test_api_errors_are_shown_and_clear_the_last_result(
    server: str, playwright: sync_api.Playwright, tmp_path: Path
) -> None:
    photo, fake = tmp_path / "astronaut.jpg", tmp_path / "not-a-photo.jpg"
    photo.write_bytes(jpeg(skimage_data.astronaut()))
    fake.write_bytes(b"just text")
    browser, page, errors = open_page(playwright, server)
    try:
        page.set_input_files("#file", photo)
        expect(page.locator("#faces .face")).to_have_count(1, timeout=20_000)
        page.set_input_files("#file", fake)
        message = page.locator("#message")
        expect(message).to_have_class("message error")
        expect(message).to_contain_text("(422)")
        expect(message).to_contain_text("the upload (9 bytes) is not an image Pillow can read")
        expect(page.locator("#faces .face")).to_have_count(0)
        expect(page.locator("#canvas")).to_be_hidden()
    finally:
        browser.close()
    assert not errors


def test_no_camera_gives_a_clear_message(server: str, playwright: sync_api.Playwright) -> None:
    browser, page, _ = open_page(playwright, server)
    try:
        page.click("#camera-open")
        message = page.locator("#message")
        expect(message).to_have_class("message error")
        expect(message).to_contain_text("camera", ignore_case=True)
        expect(page.locator("#camera")).to_be_hidden()
    finally:
        browser.close()


def test_webcam_photo_is_analysed(server: str, playwright: sync_api.Playwright) -> None:
    browser, page, errors = open_page(playwright, server, *FAKE_CAMERA)
    try:
        page.click("#camera-open")
        expect(page.locator("#camera")).to_be_visible()
        expect(page.locator("#camera-shoot")).to_be_enabled()  # once the video has frames
        page.click("#camera-shoot")
        expect(page.locator("#summary")).to_contain_text("webcam photo.jpg", timeout=20_000)
        expect(page.locator("#faces")).to_contain_text("No face found")  # a test pattern
        page.click("#camera-close")
        expect(page.locator("#camera")).to_be_hidden()
    finally:
        browser.close()
    assert not errors


def test_docs_render_the_operations_with_no_network(
    server: str, playwright: sync_api.Playwright
) -> None:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    aborted: list[str] = []
    failed: list[str] = []
    errors: list[str] = []

    def local_only(route: sync_api.Route) -> None:
        if route.request.url.startswith(server):
            route.continue_()
        else:
            aborted.append(route.request.url)
            route.abort()

    page.route("**/*", local_only)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    try:
        page.goto(f"{server}/docs")
        predict = page.locator(".opblock", has=page.locator('[data-path="/v1/predict"]'))
        expect(predict.locator(".opblock-summary-method")).to_have_text("POST")
        expect(predict).to_be_visible()
        expect(page.locator(".opblock-summary-path")).to_have_count(4)
        expect(page.locator(".info .title")).to_contain_text("inception-fer")
        predict.locator(".opblock-summary").click()
        expect(predict.locator(".opblock-section-request-body")).to_contain_text("file")
        method_colour = predict.locator(".opblock-summary-method").evaluate(
            "node => getComputedStyle(node).backgroundColor"
        )
    finally:
        browser.close()
    assert method_colour not in ("", "rgba(0, 0, 0, 0)")  # swagger-ui.css was applied
    assert not aborted and not failed and not errors
