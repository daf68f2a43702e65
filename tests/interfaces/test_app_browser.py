"""End to end: the real `ser app` server in headless Chromium (Debian's), driven by Playwright.

Uploads a long recording of speech with pauses, a tone and a non-audio file, and records from
Chromium's fake microphone (fed from a WAV file); saves screenshots to test-artifacts/.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import soundfile as sf

import numpy as np

from ..conftest import speech, tone
from .browser import ARTIFACTS, CHROMIUM, ser_server, sync_api


@pytest.fixture(scope="module")
def server():
    with ser_server("app", "/_stcore/health", 60, "the app server") as url:
        yield url


LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def playwright():
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def page(server, playwright):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
    page = browser.new_page(viewport={"width": 1280, "height": 2400})
    yield page
    browser.close()


def _open(page, url):
    page.goto(url)
    page.get_by_text("Speech emotion recognition").first.wait_for(timeout=60_000)


def _recording() -> np.ndarray:
    gap = np.zeros(16_000, np.float32)
    return np.concatenate([gap, speech(0.8), gap, speech(1.0, 0.7), gap, speech(1.3), gap])


def test_long_recording_shows_utterance_timeline(page, server, tmp_path):
    wav = tmp_path / "recording.wav"
    sf.write(wav, _recording(), 16_000)
    _open(page, server)
    players = page.locator("audio:visible").count()
    page.locator("input[type=file]").first.set_input_files(str(wav))
    page.get_by_text("Speaking time that is").first.wait_for(timeout=90_000)
    for title in ("Emotion of each utterance", "Share of the speaking time per emotion",
                  "Waveform", "Mel spectrogram"):
        page.get_by_text(title).first.wait_for(timeout=30_000)
    assert page.locator("audio:visible").count() == players + 1  # the uploaded file's player
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app_recording.png"), full_page=True)


@pytest.mark.slow
def test_ten_minute_recording_page_and_payload(server, playwright, tmp_path):
    """A 10-minute upload: the page completes (summary, timeline, waveform, spectrogram), and
    what the server sends over the websocket stays small (charts reduced to screen width).
    Time and bytes are written to test-artifacts/app_long_recording.json (a figure, not a
    timed assertion; the bound below only catches a hang)."""
    import json

    gap = np.zeros(16_000, np.float32)
    unit = np.concatenate([speech(0.9), gap, speech(1.1, 0.8), gap])
    y = np.tile(unit, int(np.ceil(600 * 16_000 / len(unit))))[: 600 * 16_000]
    flac = tmp_path / "ten_minutes.flac"
    sf.write(flac, y, 16_000)
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 2400})
        received = []
        page.on("websocket", lambda ws: ws.on(
            "framereceived", lambda frame: received.append(len(frame) if isinstance(frame, (bytes, str)) else 0)))
        _open(page, server)
        before = sum(received)
        started = time.perf_counter()
        page.locator("input[type=file]").first.set_input_files(str(flac))
        page.get_by_text("Mel spectrogram").first.wait_for(timeout=180_000)
        page.get_by_text("Share of the speaking time per emotion").first.wait_for(timeout=30_000)
        seconds = time.perf_counter() - started
        payload = sum(received) - before
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "app_ten_minutes.png"), full_page=True)
        (ARTIFACTS / "app_long_recording.json").write_text(json.dumps(
            {"audio_s": 600, "upload_bytes": flac.stat().st_size, "page_complete_s": round(seconds, 1),
             "websocket_bytes_received": payload}, indent=2))
        assert payload <= 2 * 1024 * 1024, payload  # the upload itself goes over HTTP, not here
        assert seconds < 170
    finally:
        browser.close()


@pytest.mark.parametrize("kind", ["tone", "music"])
def test_tone_and_music_are_no_speech(page, server, tmp_path, kind):
    if kind == "tone":
        upload = tmp_path / "tone.wav"
        sf.write(upload, tone(3.0, freq=1000.0), 16_000)
    else:  # a public-domain excerpt (tests/data/README.md)
        upload = Path(__file__).parents[1] / "data" / "music_brahms_hungarian_dance_5.ogg"
    _open(page, server)
    page.locator("input[type=file]").first.set_input_files(str(upload))
    page.get_by_text(f"No speech found in {upload.name}").first.wait_for(timeout=90_000)
    assert "Confidence" not in page.inner_text("body")
    page.get_by_text("Waveform").first.wait_for(timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"app_{kind}.png"), full_page=True)


def test_non_audio_upload_shows_error_and_no_player(page, server, tmp_path):
    fake = tmp_path / "notes.wav"
    fake.write_text("this is not audio at all\n" * 40)
    _open(page, server)
    players = page.locator("audio:visible").count()
    page.locator("input[type=file]").first.set_input_files(str(fake))
    page.get_by_text("Cannot analyse notes.wav").first.wait_for(timeout=60_000)
    assert "not a recognised audio file" in page.inner_text("body")
    assert page.locator("audio:visible").count() == players  # no player for undecodable input
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app_error.png"), full_page=True)


def test_microphone_recording(server, playwright, tmp_path):
    """Chromium's fake capture device plays a WAV file into st.audio_input."""
    wav = tmp_path / "mic.wav"
    sf.write(wav, np.concatenate([speech(), speech(1.1)]), 16_000)
    args = LAUNCH_ARGS + ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                          f"--use-file-for-fake-audio-capture={wav}"]
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 2000})
        context.grant_permissions(["microphone"])
        page = context.new_page()
        _open(page, server)
        page.get_by_role("tab", name="Record").click()
        page.get_by_role("button", name="Record").first.click()
        time.sleep(4)
        page.get_by_role("button", name="Stop recording").first.click()
        page.get_by_text("Waveform").first.wait_for(timeout=90_000)
        text = page.inner_text("body")
        assert "Confidence" in text or "No speech found" in text
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "app_microphone.png"), full_page=True)
    finally:
        browser.close()
