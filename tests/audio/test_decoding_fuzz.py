"""Fuzzing the decoding path: random bytes, and every supported format truncated or corrupted
at random, must end in an AudioError (or decode cleanly) — never another exception or a hang."""
from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ser.audio import AudioError, load_audio

from ..conftest import encode_with_pyav, tone


def _encoded(fmt: str, subtype: str | None, sr: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, tone(0.6, sr), sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def _pyav(container: str, codec: str, sr: int) -> bytes:
    buf = io.BytesIO()
    encode_with_pyav(buf, tone(0.6, sr), sr, container, codec)
    return buf.getvalue()


SAMPLES = {
    "wav": _encoded("WAV", "PCM_16", 16_000),
    "flac": _encoded("FLAC", "PCM_16", 16_000),
    "ogg-vorbis": _encoded("OGG", "VORBIS", 16_000),
    "ogg-opus": _encoded("OGG", "OPUS", 48_000),
    "mp3": _encoded("MP3", "MPEG_LAYER_III", 16_000),
    "m4a": _pyav("ipod", "aac", 44_100),
    "webm": _pyav("webm", "libopus", 48_000),
}
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decode_or_clean_error(data: bytes) -> None:
    try:
        y = load_audio(data, 16_000)
    except AudioError as exc:
        assert str(exc)  # a message for a person
        return
    assert y.dtype == np.float32 and np.isfinite(y).all()


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data):
    _decode_or_clean_error(data)


@pytest.mark.parametrize("name", sorted(SAMPLES))
@FUZZ
@given(cut=st.floats(0.0, 1.0))
def test_truncated(name, cut):
    data = SAMPLES[name]
    _decode_or_clean_error(data[: int(len(data) * cut)])


@pytest.mark.parametrize("name", sorted(SAMPLES))
@FUZZ
@given(st.data())
def test_corrupted(name, data):
    raw = bytearray(SAMPLES[name])
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    _decode_or_clean_error(bytes(raw))
