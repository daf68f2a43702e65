"""End to end: the real `ser app` server in headless Chromium (Debian's), driven by Playwright.

Uploads a generated WAV and a non-audio file; saves screenshots to test-artifacts/.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import soundfile as sf

from .conftest import tone

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError("CI must install Debian's chromium for the browser test")
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    ser = Path(sys.executable).with_name("ser")
    proc = subprocess.Popen([str(ser), "app", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the app server did not start within 60 s")
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 2200})
        yield page
        browser.close()


def _open(page, url):
    page.goto(url)
    page.get_by_text("Speech emotion recognition").first.wait_for(timeout=60_000)


def test_upload_shows_emotion_and_charts(page, server, tmp_path):
    wav = tmp_path / "speech.wav"
    sf.write(wav, tone(2.5, freq=180), 16_000)
    _open(page, server)
    page.locator("input[type=file]").first.set_input_files(str(wav))
    page.get_by_text("Confidence").first.wait_for(timeout=60_000)
    page.locator(".js-plotly-plot").nth(2).wait_for(timeout=60_000)
    text = page.inner_text("body")
    assert "Emotion" in text and "%" in text
    for title in ("Emotion probabilities", "Waveform", "Mel spectrogram"):
        page.get_by_text(title).first.wait_for(timeout=30_000)
    assert page.locator(".js-plotly-plot").count() >= 3
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app_result.png"), full_page=True)


def test_non_audio_upload_shows_error(page, server, tmp_path):
    fake = tmp_path / "notes.wav"
    fake.write_text("this is not audio at all\n" * 40)
    _open(page, server)
    page.locator("input[type=file]").first.set_input_files(str(fake))
    error = page.get_by_text("Cannot analyse notes.wav")
    error.first.wait_for(timeout=60_000)
    assert "not a recognised audio file" in page.inner_text("body")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app_error.png"), full_page=True)
