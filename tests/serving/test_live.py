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


def _check_same(events, reference, plain=None):
    """Utterance events as the segments of ``plain`` (the reference without session adaptation:
    an event goes out as its utterance ends), the summary as ``reference``."""
    plain = plain or reference
    utterances = [e for e in events if e["type"] == "utterance"]
    assert events[-1]["type"] == "summary" and events.count(events[-1]) == 1
    assert [(e["start_s"], e["end_s"], e["emotion"]) for e in utterances] == [
        (round(s.start_s, 3), round(s.end_s, 3), s.emotion) for s in plain.segments]
    for e, s in zip(utterances, plain.segments):
        for k, v in s.probabilities.items():
            assert abs(e["probabilities"][k] - v) <= 1e-4
    summary, expected = dict(events[-1]), reference.to_dict()
    summary.pop("type")
    assert summary.keys() == expected.keys()
    assert (summary["summary"], summary["emotion"], summary["segments"]) == (
        expected["summary"], expected["emotion"], expected["segments"])
    assert summary["duration_s"] == expected["duration_s"] and summary["speech_s"] == expected["speech_s"]


def test_a_corpus_recording_fed_in_pieces_of_any_size_equals_predict(rec, corpora):
    y = _corpus_recording(corpora, seconds=60.0)
    reference = rec.predict(y, sample_rate=16_000)
    assert len(reference.segments) >= 10 and len({s.emotion for s in reference.segments}) >= 2
    # Several speakers and emotions: the whole recording is adapted, in predict and the summary.
    assert reference.adapted_utterances == len(reference.segments)
    plain = EmotionRecognizer.load("default")
    plain.adaptation = None
    plain = plain.predict(y, sample_rate=16_000)
    rng = np.random.default_rng(1)
    for sizes in ([320] * (len(y) // 320 + 1),  # 20-ms frames, as a microphone sends them
                  list(rng.integers(16, 8_000, size=len(y) // 16 + 1))):  # 1-500 ms at random
        _check_same(_feed(rec.stream(16_000), y, sizes), reference, plain)


def _fed(session, y, piece: int = 320) -> list[dict]:
    """Events of ``y`` fed in pieces, each with ``fed``: the stream time when it came."""
    events = []
    for i in range(0, len(y), piece):
        for event in session.feed(y[i : i + piece]):
            events.append({**event, "fed": min(len(y), i + piece) / 16_000})
    return events + session.close()


def test_utterances_arrive_while_the_stream_goes_on(rec, corpora):
    """Each utterance's event comes with the piece that completes it: once the detector has
    closed it and its window is decided: the second after it has come and the quiet in it is
    trimmed either way, or the next one has started, or none starts within twice the 1-s
    context (so at most ~2.2 s after its end), never at the end of the stream.
    Before it: the detector's start and end, and an interim estimate as soon as it ended."""
    y = _corpus_recording(corpora, 60.0)
    events = _fed(rec.stream(16_000), y)
    utterances = [e for e in events if e["type"] == "utterance"]
    late = [e["fed"] - e["end_s"] for e in utterances if "fed" in e]
    assert len(late) >= 8 and events[-1]["type"] == "summary"
    assert 0 < min(late) and max(late) < 2.5, late
    assert np.median(late) < 1.2, late  # most: as soon as the second after it has come
    assert len(utterances) - len(late) <= 1  # at most the last utterance is left for close()
    started = [e for e in events if e["type"] == "speech_started"]
    ended = [e for e in events if e["type"] == "speech_ended"]
    assert len(started) == len(ended) == len(utterances)
    for s, e, u in zip(started, ended, utterances):
        assert u["start_s"] <= s["time_s"] < e["time_s"] <= u["end_s"]
        assert events.index(s) < events.index(e) < events.index(u)
        assert s["fed"] - s["time_s"] < 0.5  # 0.1 s of sure speech, 32-ms steps, 20-ms pieces
        if "fed" in e:
            assert e["fed"] - e["time_s"] < 0.5  # 0.3 s of pause ends it
            first_look = events[events.index(e) + 1]
            assert first_look["type"] == "interim" and first_look["fed"] == e["fed"]
            assert first_look["start_s"] == u["start_s"]
    looks = [e for e in events if e["type"] == "interim"]
    agree = sum(any(i["start_s"] == u["start_s"] and i["emotion"] == u["emotion"] for i in looks)
                for u in utterances)
    assert agree >= 0.7 * len(utterances)  # the first look is mostly the final answer


def test_long_speech_gets_interim_estimates_at_least_every_1_5_s(rec):
    from ser.audio.vad import speech_segments

    voice = speech()
    words = np.concatenate([voice[a:b] for a, b in speech_segments(voice)])  # pauses cut out
    y = np.concatenate([words] * 6)  # 12 s of speech without a pause the detector ends (0.3 s)
    events = _fed(rec.stream(16_000), y)
    starts = [e["time_s"] for e in events if e["type"] == "speech_started"]
    ends = [e["time_s"] for e in events if e["type"] == "speech_ended"]
    start, end = max(zip(starts, ends), key=lambda span: span[1] - span[0])
    assert end - start > 8
    looks = [e["fed"] for e in events
             if e["type"] == "interim" and start < e.get("fed", 0) < end + 0.1]
    assert looks and looks[0] - start <= 3.0 + 1.0 + 0.1  # once a window is heard
    assert max(np.diff(looks)) <= 1.5 and end - looks[-1] <= 1.5


def test_another_rate_is_resampled_and_a_live_stream_is_a_recording(rec):
    clip = speech(sr=48_000)
    events = _feed(rec.stream(48_000), clip, [4_800] * 40)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "speech_started" and kinds[-1] == "summary" and "utterance" in kinds
    alone = rec.predict(np.concatenate([clip, np.zeros(6 * 48_000, np.float32)]),
                        sample_rate=48_000)  # long enough that predict takes it as a recording
    assert [e["emotion"] for e in events if e["type"] == "utterance"] == [s.emotion for s in alone.segments]
    assert abs(events[-1]["duration_s"] - len(clip) / 48_000) < 0.01


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
