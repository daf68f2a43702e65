"""HTTP API contract and hardening, with FastAPI's test client and a tiny bundle."""
from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from ser import EMOTIONS  # noqa: E402
from ser.api import ServerConfig, create_app  # noqa: E402

from ser.inference import PREDICTION_FIELDS  # noqa: E402

from .conftest import speech, tone  # noqa: E402


def _wav(y, sr=16_000, fmt="WAV"):
    buf = io.BytesIO()
    sf.write(buf, y, sr, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def client(tiny_bundle):
    app = create_app(ServerConfig(model=str(tiny_bundle[1]), max_upload_mb=1.0, max_duration_s=20))
    with TestClient(app, raise_server_exceptions=True) as c:
        yield c


def test_health_model_and_openapi(client):
    assert client.get("/v1/health").json()["status"] == "ok"
    info = client.get("/v1/model").json()
    assert info["labels"] == list(EMOTIONS) and info["frontend"] == "handcrafted"
    schema = client.get("/openapi.json").json()
    assert "/v1/predict" in schema["paths"]


def test_predict_multipart_and_raw(client):
    wav = _wav(speech())
    r = client.post("/v1/predict", files={"file": ("a.wav", wav, "audio/wav")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert tuple(body) == PREDICTION_FIELDS
    assert body["path"] == "a.wav" and body["emotion"] in EMOTIONS and body["speech_s"] > 1.0
    assert set(body["probabilities"]) == set(EMOTIONS)
    raw = client.post("/v1/predict", content=wav, headers={"content-type": "audio/wav"})
    assert raw.status_code == 200 and raw.json()["emotion"] == body["emotion"]
    flac = client.post("/v1/predict", content=_wav(speech(), fmt="FLAC"),
                       headers={"content-type": "audio/flac"})
    assert flac.status_code == 200


@pytest.mark.parametrize("name", ["silence", "tone", "noise"])
def test_non_speech_is_no_speech(client, name):
    y = {"silence": np.zeros(32_000, np.float32), "tone": tone(2.0, freq=1000.0),
         "noise": 0.1 * np.random.default_rng(0).standard_normal(32_000).astype(np.float32)}[name]
    r = client.post("/v1/predict", files={"file": ("s.wav", _wav(y), "audio/wav")})
    assert r.status_code == 200 and r.json()["emotion"] == "no_speech"
    assert r.json()["segments"] == [] and r.json()["speech_s"] == 0


def test_music_is_no_speech(client):
    from pathlib import Path

    music = (Path(__file__).parent / "data" / "music_brahms_hungarian_dance_5.ogg").read_bytes()
    r = client.post("/v1/predict", content=music, headers={"content-type": "audio/ogg"})
    assert r.status_code == 200 and r.json()["emotion"] == "no_speech"


@pytest.mark.parametrize("sent,echoed", [("../../../../etc/passwd", "passwd"),
                                         ("<script>alert(1)</script>.wav", "script_.wav"),
                                         ("C:\\x\\voice memo.m4a", "voice memo.m4a")])
def test_file_name_is_sanitised_before_it_is_echoed(client, sent, echoed):
    r = client.post("/v1/predict", files={"file": (sent, _wav(speech()), "audio/wav")})
    assert r.status_code == 200 and r.json()["path"] == echoed


@pytest.mark.parametrize(
    "content,ctype,status,message",
    [
        (b"", "audio/wav", 422, "empty"),
        (b"definitely not audio" * 30, "audio/wav", 422, "not a recognised audio file"),
        (None, "audio/wav", 422, "too short"),
        (b"hello", "text/plain", 415, "not audio"),
        (b"\0" * (2 * 1024 * 1024), "audio/wav", 413, "limit"),
    ],
)
def test_bad_input_gets_a_clean_4xx(client, content, ctype, status, message):
    if content is None:
        content = _wav(np.zeros(100, np.float32))
    r = client.post("/v1/predict", content=content, headers={"content-type": ctype})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_truncated_and_over_long(client):
    wav = _wav(speech())
    r = client.post("/v1/predict", content=wav[:60], headers={"content-type": "audio/wav"})
    assert 400 <= r.status_code < 500
    long = _wav(np.zeros(16_000 * 25, np.float32) + 0.01, fmt="FLAC")
    r = client.post("/v1/predict", content=long, headers={"content-type": "audio/flac"})
    assert r.status_code == 422 and "limit" in r.json()["error"]


def test_multipart_without_file_field(client):
    r = client.post("/v1/predict", files={"other": ("x.wav", b"abc", "audio/wav")})
    assert r.status_code == 422 and "'file'" in r.json()["error"]
    form = client.post("/v1/predict", data={"other": "x"})  # url-encoded form: not audio
    assert form.status_code == 415
