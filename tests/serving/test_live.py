"""Live sessions: a recording fed in pieces of any size gives the utterances, emotions and
summary that `predict` gives on the whole recording (one code path)."""
from __future__ import annotations

import numpy as np
import pytest

from ser import EmotionRecognizer
from ser.audio import AudioError, decode

from ..conftest import speech


@pytest.fixture(scope="module")
def rec():
    return EmotionRecognizer.load("default")


def _corpus_recording(corpora, seconds: float = 40.0) -> np.ndarray:
    """Clips of several RAVDESS and CREMA-D speakers and emotions with 0.4-2-s pauses."""
    rng = np.random.default_rng(0)
    files = sorted((corpora / "ravdess").rglob("*.flac"))[::97] + sorted((corpora / "crema-d").rglob("*.ogg"))[::601]
    parts, total = [], 0
    for f in rng.permutation(files):
        y = decode(str(f), 16_000).samples
        gap = np.zeros(int(rng.uniform(0.4, 2.0) * 16_000), np.float32)
        parts += [y, gap]
        total += len(y) + len(gap)
        if total > seconds * 16_000:
            break
    return np.concatenate(parts)


def _feed(session, y, sizes):
    events, i = [], 0
    for size in sizes:
        if i >= len(y):
            break
        events += session.feed(y[i : i + size])
        i += size
    assert i >= len(y)
    return events + session.close()


def _check_same(events, reference):
    utterances = [e for e in events if e["type"] == "utterance"]
    assert events[-1]["type"] == "summary" and events.count(events[-1]) == 1
    assert [(e["start_s"], e["end_s"], e["emotion"]) for e in utterances] == [
        (round(s.start_s, 3), round(s.end_s, 3), s.emotion) for s in reference.segments]
    for e, s in zip(utterances, reference.segments):
        for k, v in s.probabilities.items():
            assert abs(e["probabilities"][k] - v) <= 1e-4
    summary, expected = dict(events[-1]), reference.to_dict()
    summary.pop("type")
    assert summary.keys() == expected.keys()
    assert (summary["summary"], summary["emotion"], summary["segments"]) == (
        expected["summary"], expected["emotion"], expected["segments"])
    assert summary["duration_s"] == expected["duration_s"] and summary["speech_s"] == expected["speech_s"]


def test_a_corpus_recording_fed_in_pieces_of_any_size_equals_predict(rec, corpora):
    y = _corpus_recording(corpora)
    reference = rec.predict(y, sample_rate=16_000)
    assert len(reference.segments) >= 8 and len({s.emotion for s in reference.segments}) >= 2
    rng = np.random.default_rng(1)
    for sizes in ([320] * (len(y) // 320 + 1),  # 20-ms frames, as a microphone sends them
                  list(rng.integers(16, 8_000, size=len(y) // 16 + 1))):  # 1-500 ms at random
        _check_same(_feed(rec.stream(16_000), y, sizes), reference)


def test_utterances_arrive_while_the_stream_goes_on(rec, corpora):
    """Each utterance's event comes with the piece that completes it: once the detector has
    closed it and knows where the next one starts, or that none starts within twice the
    1-s context after it (so at most ~2.2 s after its end), never at the end of the stream."""
    y = _corpus_recording(corpora, 60.0)
    session, late = rec.stream(16_000), []
    for i in range(0, len(y), 320):
        for event in session.feed(y[i : i + 320]):
            late.append((i + 320) / 16_000 - event["end_s"])
    rest = session.close()
    assert len(late) >= 8 and [e["type"] for e in rest][-1] == "summary"
    assert 0 < min(late) and max(late) < 2.5, late
    assert len(rest) <= 2  # at most the last utterance is left for close()


def test_another_rate_is_resampled_and_a_short_clip_is_one_clip(rec):
    clip = speech(sr=48_000)
    events = _feed(rec.stream(48_000), clip, [4_800] * 40)
    assert [e["type"] for e in events] == ["utterance", "summary"]
    alone = rec.predict(clip, sample_rate=48_000)
    assert events[0]["emotion"] == alone.emotion
    assert abs(events[-1]["duration_s"] - alone.duration_s) < 0.01


def test_bad_input_is_refused_and_a_closed_session_stays_closed(rec):
    session = rec.stream(16_000)
    with pytest.raises(AudioError, match="NaN"):
        session.feed(np.array([0.0, np.nan], np.float32))
    assert session.feed(np.zeros(0, np.float32)) == []
    assert session.close()[-1]["emotion"] == "no_speech"
    assert session.close() == []
    with pytest.raises(AudioError, match="closed"):
        session.feed(np.zeros(160, np.float32))
    with pytest.raises(AudioError, match="positive"):
        rec.stream(0)
