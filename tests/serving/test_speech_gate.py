"""The default bundle's speech gate: word-length speech the detector misses is analysed, while
tones, hum and music (which the second look at short input could let in) stay refused."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ser import EmotionRecognizer
from ser.audio import decode
from ser.serving.classifier import SpeechGate

from ..conftest import CORPORA, speech

VAD = CORPORA.parent / "vad"


@pytest.fixture(scope="module")
def rec():
    return EmotionRecognizer.load("default")


@pytest.fixture(scope="module")
def ungated():
    rec = EmotionRecognizer.load("default")
    rec.gate, rec.short_pad_s = None, 0.0
    return rec


def test_the_gate_is_plain_data_in_the_bundle(rec):
    gate = rec.bundle.config["speech_gate"]
    assert isinstance(rec.gate, SpeechGate) and 0 < gate["threshold"] < 1
    assert len(gate["weights"]) == rec.bundle.input_shape[-1] and "command" in gate
    assert rec.short_pad_s > 0


def _word() -> np.ndarray:
    """A word trimmed to its first sample, as FSDD's digits are: the detector alone misses it."""
    from ser.audio.vad import speech_segments

    y = speech()
    s, e = speech_segments(y)[0]
    word = y[s : s + int(0.45 * 16_000)]
    return word[np.flatnonzero(np.abs(word) > 0.05 * np.abs(word).max())[0]:]


def test_trimmed_words_down_to_0_15_s_are_analysed(rec):
    word = _word()
    for seconds in (0.45, 0.3, 0.2, 0.15):
        assert rec.predict(word[: int(seconds * 16_000)], sample_rate=16_000).has_speech, seconds
    assert rec.predict(word[: int(0.12 * 16_000)], sample_rate=16_000) is not None  # ≥ 0.1 s: no error


@pytest.mark.parametrize("seconds", [0.3, 0.6, 1.0, 3.0])
def test_tones_and_hum_stay_refused_even_with_the_second_look(rec, seconds):
    t = np.arange(int(seconds * 16_000)) / 16_000
    for y in (0.3 * sum(np.sin(2 * np.pi * 60 * k * t) / k for k in range(1, 8)),  # mains hum
              0.3 * sum(np.sin(2 * np.pi * 110 * k * t) / k for k in range(1, 6)),  # harmonic tone
              0.5 * np.sin(2 * np.pi * 440 * t)):
        assert rec.predict(y.astype(np.float32), sample_rate=16_000).emotion == "no_speech"


def test_speech_in_a_recording_keeps_its_utterances(rec, ungated):
    gap = np.zeros(16_000, np.float32)
    y = np.concatenate([gap, speech(0.9), gap, gap, speech(1.1, 0.8), gap, gap])
    assert [s.emotion for s in rec.predict(y, sample_rate=16_000).segments] == [
        s.emotion for s in ungated.predict(y, sample_rate=16_000).segments]


@pytest.mark.skipif(not VAD.is_dir(), reason="../shared/vad is not available")
def test_fsdd_words_and_music(rec, ungated):
    words = sorted((VAD / "speech" / "fsdd").glob("*.ogg"))[::40]  # 30 words, all 6 speakers
    analysed = sum(rec.predict(str(f)).has_speech for f in words)
    before = sum(ungated.predict(str(f)).has_speech for f in words if decode(str(f), 16_000).duration_s >= 0.1)
    assert analysed >= len(words) - 1 and before < analysed
    music = VAD / "nonspeech" / "librosa-examples" / "Kevin_MacLeod_-_Vibe_Ace.ogg"
    y = decode(str(music), 16_000, max_duration_s=None).samples[: 30 * 16_000]
    assert ungated.predict(y, sample_rate=16_000).has_speech  # the detector alone takes it
    assert rec.predict(y, sample_rate=16_000).emotion == "no_speech"


def test_a_live_stream_of_non_speech_has_no_utterances(rec):
    t = np.arange(8 * 16_000) / 16_000
    hum = (0.3 * sum(np.sin(2 * np.pi * 60 * k * t) / k for k in range(1, 8))).astype(np.float32)
    session = rec.stream(16_000)
    events = [e for i in range(0, len(hum), 1_600) for e in session.feed(hum[i : i + 1_600])]
    events += session.close()
    assert [e["type"] for e in events if e["type"] in ("utterance", "interim")] == []
    assert events[-1]["emotion"] == "no_speech"
