"""HTTP API contract and hardening, with FastAPI's test client and a tiny bundle."""
from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from ser import EMOTIONS  # noqa: E402
from ser.interfaces.api import ServerConfig, create_app  # noqa: E402
from ser.serving.inference import EmotionRecognizer  # noqa: E402

from ser.serving.inference import PREDICTION_FIELDS  # noqa: E402

from ..conftest import speech, tone  # noqa: E402


def _wav(y, sr=16_000, fmt="WAV"):
    buf = io.BytesIO()
    sf.write(buf, y, sr, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def client(random_bundle):
    app = create_app(ServerConfig(model=str(random_bundle), max_upload_mb=1.0, max_duration_s=20))
    with TestClient(app, raise_server_exceptions=True) as c:
        yield c


def test_health_model_and_openapi(client):
    for _ in range(300):  # the model loads in the background; health says so
        r = client.get("/v1/health")
        if r.json()["status"] != "loading":
            break
        assert r.status_code == 503
        import time

        time.sleep(0.1)
    assert r.status_code == 200 and r.json()["status"] == "ok"
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

    music = (Path(__file__).parents[1] / "data" / "music_brahms_hungarian_dance_5.ogg").read_bytes()
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
    long = _wav(np.zeros(16_000 * 150, np.float32) + 0.01, fmt="FLAC")
    r = client.post("/v1/predict", content=long, headers={"content-type": "audio/flac"})
    assert r.status_code == 413 and "limit" in r.json()["error"] and "/v1/jobs" in r.json()["error"]
    flac = _wav(np.concatenate([speech(), speech()]), fmt="FLAC")
    half = client.post("/v1/predict", content=flac[: len(flac) // 2], headers={"content-type": "audio/flac"})
    assert half.status_code == 200 and half.json()["warnings"] == ["truncated"]


def test_a_raw_body_without_a_content_type_is_judged_by_its_bytes(client):
    """curl --data-binary @clip.wav sends no audio type: the bytes decide, as for a file."""
    ok = client.post("/v1/predict", content=_wav(speech()), headers={"content-type": ""})
    assert ok.status_code == 200, ok.text
    assert ok.json()["emotion"] in EMOTIONS and ok.json()["model"] == ok.json()["model"].strip()
    bad = client.post("/v1/predict", content=b"not audio at all" * 40, headers={"content-type": ""})
    assert bad.status_code == 422 and "not a recognised audio file" in bad.json()["error"]


def test_multipart_without_file_field(client):
    r = client.post("/v1/predict", files={"other": ("x.wav", b"abc", "audio/wav")})
    assert r.status_code == 422 and "'file'" in r.json()["error"]
    form = client.post("/v1/predict", data={"other": "x"})  # url-encoded form: not audio
    assert form.status_code == 415


def test_docs_work_offline(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "/static-offline-docs/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower() and "http" not in page.text.split("<body>")[-1].lower()
    assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    assert client.get("/static-offline-docs/swagger-ui.css").status_code == 200
    assert client.get("/redoc").status_code == 200


def _wait_for_job(client, job_id, seconds=60):
    import time

    for _ in range(int(seconds * 10)):
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {job}")


@pytest.fixture(scope="module")
def small_server(random_bundle):
    """Sync limit 20 s, at most 2 jobs: the long-audio rules in a few seconds."""
    app = create_app(ServerConfig(model=str(random_bundle), max_sync_duration_s=20,
                                  max_duration_s=60, max_jobs=2))
    with TestClient(app) as c:
        _wait_ready(c)
        yield c


def _wait_ready(c):
    import time

    for _ in range(300):
        if c.get("/v1/health").status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError("the model did not load")


def _recording(seconds: float) -> bytes:
    gap = np.zeros(16_000, np.float32)
    parts = []
    while sum(map(len, parts)) < seconds * 16_000:
        parts += [speech(), gap]
    return _wav(np.concatenate(parts)[: int(seconds * 16_000)], fmt="FLAC")


def test_long_audio_goes_to_jobs(small_server):
    import time

    long = _recording(30)
    r = small_server.post("/v1/predict", content=long, headers={"content-type": "audio/flac"})
    assert r.status_code == 413 and "/v1/jobs" in r.json()["error"]
    r = small_server.post("/v1/jobs", content=long, headers={"content-type": "audio/flac",
                                                               "x-filename": "call.flac"})
    assert r.status_code == 202 and r.json()["status"] in ("queued", "running", "done")
    seen = []
    for _ in range(600):  # progress moves while the job decodes and analyses, not at the end only
        job = small_server.get(f"/v1/jobs/{r.json()['id']}").json()
        seen.append(job["progress"])
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.005)
    job = _wait_for_job(small_server, r.json()["id"])
    assert job["status"] == "done" and job["progress"] == 1.0
    assert any(0.0 < f < 1.0 for f in seen), seen
    assert job["result"]["path"] == "call.flac" and len(job["result"]["segments"]) >= 5
    assert small_server.get("/v1/jobs/nope").status_code == 404
    # A header that declares too long a recording is refused at submission, not a second later.
    too_long = small_server.post("/v1/jobs", content=_recording(70),
                                 headers={"content-type": "audio/flac"})
    assert too_long.status_code == 413 and "70.0 s, over this server's limit of 60 s" in too_long.text
    # One without a believable length (a cut header) is accepted and fails when decoded.
    raw = _wav(np.concatenate([speech(), np.zeros(16_000 * 69, np.float32)]))
    headless = small_server.post("/v1/jobs", content=raw[44:], headers={"content-type": "audio/wav"})
    if headless.status_code == 202:
        failed = _wait_for_job(small_server, headless.json()["id"])
        assert failed["status"] == "failed"
    else:
        assert headless.status_code in (413, 422), headless.text
    limits = small_server.get("/v1/model").json()["limits"]
    assert limits["max_sync_duration_s"] == 20 and limits["max_duration_s"] == 60


def test_job_queue_is_bounded(small_server):
    long = _recording(40)
    answers = [small_server.post("/v1/jobs", content=long, headers={"content-type": "audio/flac"})
               for _ in range(4)]
    codes = [r.status_code for r in answers]
    assert codes.count(202) >= 2 and 429 in codes
    refused = next(r for r in answers if r.status_code == 429)
    assert int(refused.headers["retry-after"]) > 0  # when to come back
    # short requests are still answered while jobs run
    r = small_server.post("/v1/predict", content=_wav(speech()), headers={"content-type": "audio/wav"})
    assert r.status_code == 200


def test_client_disconnect_mid_upload_is_one_log_line(random_bundle, caplog):
    """A client that drops during the upload: one INFO line, no traceback, no 500."""
    import asyncio
    import logging



    app = create_app(ServerConfig(model=str(random_bundle)), recognizer=EmotionRecognizer.load(random_bundle))
    body = _wav(speech())
    messages = [{"type": "http.request", "body": body[:1000], "more_body": True},
                {"type": "http.disconnect"}]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/v1/predict", "raw_path": b"/v1/predict", "query_string": b"",
             "root_path": "", "headers": [(b"content-type", b"audio/wav"),
                                          (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}
    with caplog.at_level(logging.INFO, logger="ser.interfaces.api"):
        asyncio.run(app(scope, receive, send))
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert starts and starts[0]["status"] == 400
    lines = [r for r in caplog.records if r.name == "ser.interfaces.api"]
    assert len(lines) == 1 and "disconnected" in lines[0].getMessage() and lines[0].exc_info is None


def test_jobs_of_one_named_speaker_are_answered_over_his_jobs_so_far(corpora):
    """?speaker=NAME: each job is answered over the utterances of that speaker's jobs so far
    (adapted once their answers are spread), as EmotionRecognizer.adapt_after chains them;
    a job without a speaker, and another speaker's, are answered alone."""
    from ser import EmotionRecognizer

    folder = corpora / "ravdess" / "Actor_08"
    clips = [folder / f"03-01-{e:02d}-02-{s:02d}-01-08.flac" for s in (1, 2) for e in (2, 3, 4, 5, 7, 8)]
    app = create_app(ServerConfig(model="default"))
    rec = EmotionRecognizer.load("default")
    with TestClient(app) as c:
        _wait_ready(c)
        results = []
        for clip in clips:
            r = c.post("/v1/jobs?speaker=actor8", content=clip.read_bytes(),
                       headers={"content-type": "audio/flac"})
            assert r.status_code == 202, r.text
            results.append(_wait_for_job(c, r.json()["id"])["result"])
        alone = _wait_for_job(c, c.post("/v1/jobs", content=clips[-1].read_bytes(),
                                        headers={"content-type": "audio/flac"}).json()["id"])["result"]
        other = _wait_for_job(c, c.post("/v1/jobs?speaker=someone", content=clips[-1].read_bytes(),
                                        headers={"content-type": "audio/flac"}).json()["id"])["result"]
        assert c.post("/v1/jobs?speaker=" + "x" * 101, content=clips[0].read_bytes(),
                      headers={"content-type": "audio/flac"}).status_code == 422
    earlier, expected = None, []
    for clip in clips:
        answer, earlier = rec.adapt_after(rec.predict(str(clip)), earlier)
        expected.append(answer.to_dict())
    assert [r["adapted_utterances"] for r in results] == [e["adapted_utterances"] for e in expected]
    assert results[0]["adapted"] is False and results[-1]["adapted"] is True  # spread by then
    assert results[-1]["adapted_utterances"] == len(clips)
    for got, want in zip(results, expected):
        for k, v in want["probabilities"].items():
            assert got["probabilities"][k] == pytest.approx(v, abs=1e-4)
    assert alone["adapted"] is False and other["adapted"] is False
    assert alone["probabilities"] == other["probabilities"] != results[-1]["probabilities"]
