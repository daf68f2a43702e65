"""WS /v1/stream: a live stream's events equal predict's analysis; every hostile input gets an
error event and a close with its code, never a crash and never another stream's failure."""
from __future__ import annotations

import io
import json
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from ser import EmotionRecognizer  # noqa: E402
from ser.interfaces.api import ServerConfig, create_app  # noqa: E402

from ..conftest import speech  # noqa: E402


@pytest.fixture(scope="module")
def rec():
    return EmotionRecognizer.load("default")


def _client(rec, **limits) -> TestClient:
    return TestClient(create_app(ServerConfig(**limits), recognizer=rec))


@pytest.fixture(scope="module")
def client(rec):
    with _client(rec, max_streams=2, max_stream_s=30.0) as c:
        yield c


def _recording() -> np.ndarray:
    """Two utterances with pauses: long enough to be analysed as a recording."""
    y = speech()
    gap = np.zeros(16_000, np.float32)
    return np.concatenate([gap, y, gap, gap, y[::-1].copy(), gap])


def _receive_all(ws) -> tuple[list[dict], int]:
    """Events until the server closes; (events, close code)."""
    events = []
    while True:
        try:
            events.append(ws.receive_json())
        except WebSocketDisconnect as closed:
            return events, closed.code


def _stream(client, frames, query="sample_rate=16000&format=s16le", end=True):
    with client.websocket_connect(f"/v1/stream?{query}") as ws:
        ready = ws.receive_json()
        for frame in frames:
            if isinstance(frame, str):
                ws.send_text(frame)
            else:
                ws.send_bytes(frame)
        if end:
            ws.send_text(json.dumps({"type": "end"}))
        events, code = _receive_all(ws)
    return ready, events, code


def _s16(y: np.ndarray) -> np.ndarray:
    return np.clip(np.round(y * 32768), -32768, 32767).astype("<i2")


def test_pcm_in_20_ms_frames_gives_predicts_utterances(client, rec):
    pcm = _s16(_recording())
    ready, events, code = _stream(client, [pcm[i : i + 320].tobytes() for i in range(0, len(pcm), 320)])
    assert ready["type"] == "ready" and ready["model"] == "default" and len(ready["model_version"]) == 12
    assert code == 1000 and events[-1]["type"] == "summary"
    expected = rec.predict(pcm.astype(np.float32) / 32768, sample_rate=16_000)
    utterances = [e for e in events if e["type"] == "utterance"]
    assert [(u["start_s"], u["end_s"], u["emotion"]) for u in utterances] == [
        (round(s.start_s, 3), round(s.end_s, 3), s.emotion) for s in expected.segments]
    assert events[-1]["emotion"] == expected.emotion and events[-1]["model"] == "default"
    kinds = [e["type"] for e in events]
    assert kinds.count("speech_started") == kinds.count("speech_ended") == len(utterances) == 2
    assert kinds.index("speech_started") < kinds.index("interim") < kinds.index("utterance")


def test_stereo_float_at_48_khz_is_mixed_down_and_resampled(client, rec):
    import soxr

    mono = soxr.resample(_recording(), 16_000, 48_000).astype(np.float32)
    stereo = np.stack([mono, mono], axis=1).astype("<f4").reshape(-1)
    frames = [stereo[i : i + 9_600].tobytes() for i in range(0, len(stereo), 9_600)]
    _, events, code = _stream(client, frames, "sample_rate=48000&format=f32le&channels=2")
    assert code == 1000
    expected = rec.predict(mono, sample_rate=48_000)
    assert [e["emotion"] for e in events if e["type"] == "utterance"] == [
        s.emotion for s in expected.segments]


def _webm(y: np.ndarray, sr: int = 48_000, fmt: str = "webm") -> bytes:
    import av
    import soxr

    y = soxr.resample(y, 16_000, sr).astype(np.float32)
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream("libopus", rate=sr, layout="mono")
        frame = av.AudioFrame.from_ndarray(y[None, :], format="flt", layout="mono")
        frame.sample_rate = sr
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["webm", "ogg"])
def test_browser_chunks_of_opus_are_decoded_as_they_come(client, rec, fmt):
    data = _webm(_recording(), fmt=fmt)
    frames = [data[i : i + 3_000] for i in range(0, len(data), 3_000)]  # MediaRecorder's slices
    ready, events, code = _stream(client, frames, f"format={fmt}")
    assert code == 1000 and ready["sample_rate"] is None
    expected = rec.predict(data)
    utterances = [e for e in events if e["type"] == "utterance"]
    assert [u["emotion"] for u in utterances] == [s.emotion for s in expected.segments]
    for u, s in zip(utterances, expected.segments):
        assert abs(u["start_s"] - s.start_s) < 0.05 and abs(u["end_s"] - s.end_s) < 0.05
    assert abs(events[-1]["duration_s"] - expected.duration_s) < 0.05


HOSTILE = [
    ("odd byte count", "sample_rate=16000&format=s16le", [b"\x00" * 641], 1007, "whole samples"),
    ("NaN", "sample_rate=16000&format=f32le", [np.full(160, np.nan, "<f4").tobytes()], 1007, "NaN"),
    ("10-MB frame", "sample_rate=16000&format=s16le", [b"\x00" * 10_000_000], 1009, "over the limit"),
    ("text that is not JSON", "sample_rate=16000", ["hello"], 1007, "must be JSON"),
    ("unknown message", "sample_rate=16000", ['{"type": "pause"}'], 1003, "only message"),
    ("a wrong rate", "sample_rate=5&format=s16le", [], 1003, "out of range"),
    ("a rate that is not a number", "sample_rate=fast", [], 1003, "whole numbers"),
    ("an unknown format", "format=mp3", [], 1003, "not taken"),
    ("undecodable WebM", "format=webm", [bytes(range(256)) * 40], 1007, "not a webm"),
]


@pytest.mark.parametrize("name,query,frames,code,message", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_gets_an_error_and_a_close_and_the_next_stream_works(
        client, name, query, frames, code, message):
    with client.websocket_connect(f"/v1/stream?{query}") as ws:
        first = ws.receive_json()
        if first["type"] == "ready":
            for frame in frames:
                ws.send_text(frame) if isinstance(frame, str) else ws.send_bytes(frame)
            ws.send_text('{"type": "end"}')
            events, got = _receive_all(ws)
        else:
            events, got = [first], _receive_all(ws)[1]
    assert got == code, (name, events)
    assert events[-1]["type"] == "error" and events[-1]["code"] == code
    assert message in events[-1]["error"]
    pcm = _s16(speech()).tobytes()
    _, events, code = _stream(client, [pcm])  # the server goes on serving
    assert code == 1000 and events[-1]["type"] == "summary"


def test_streams_over_the_limit_are_told_to_retry(client):
    with client.websocket_connect("/v1/stream") as a, client.websocket_connect("/v1/stream") as b:
        assert a.receive_json()["type"] == b.receive_json()["type"] == "ready"
        with client.websocket_connect("/v1/stream") as c:
            events, code = _receive_all(c)
        assert code == 1013 and events[0]["retry_after_s"] > 0 and "busy" in events[0]["error"]
    _, events, code = _stream(client, [])  # the slots are free again
    assert code == 1000 and events[-1]["emotion"] == "no_speech"


def test_a_stream_over_its_length_or_idle_ends_with_its_results_first(rec):
    pcm = _s16(_recording()).tobytes()
    with _client(rec, max_stream_s=4.0, stream_idle_s=0.5) as client:
        _, events, code = _stream(client, [pcm[i : i + 32_000] for i in range(0, len(pcm), 32_000)],
                                  end=False)
        assert code == 1008 and "limit of 4 s" in events[-1]["error"]
        assert events[-2]["type"] == "summary" and events[-2]["duration_s"] <= 4.0
        with client.websocket_connect("/v1/stream") as ws:
            ws.receive_json()
            ws.send_bytes(_s16(speech()).tobytes())
            events, code = _receive_all(ws)  # then nothing more: idle
        assert code == 1008 and "no audio for 0.5 s" in events[-1]["error"]
        assert events[-2]["type"] == "summary" and events[-2]["emotion"] != "no_speech"


def test_abrupt_disconnects_free_their_sessions(client):
    pcm = _s16(_recording()).tobytes()
    before = threading.active_count()
    for _ in range(100):
        with client.websocket_connect("/v1/stream") as ws:
            ws.receive_json()
            ws.send_bytes(pcm[:64_000])
        # leaving the block without "end" drops the connection
    for _ in range(50):
        if threading.active_count() <= before:
            break
        time.sleep(0.1)
    assert threading.active_count() <= before
    _, events, code = _stream(client, [pcm])
    assert code == 1000 and events[-1]["type"] == "summary"
