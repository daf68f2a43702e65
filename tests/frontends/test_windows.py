"""The one window path (ser.frontends.windows) and the Silero voice activity detector (ser.audio.vad)."""
from __future__ import annotations

import librosa
import numpy as np
import pytest

from ser.audio import vad
from ser.frontends.features import FeatureConfig
from ser.frontends.windows import analysis_units, clip_unit, fit_window, split_evenly, trim_bounds, utterance_units

from ..conftest import speech, tone

SR = 16_000


@pytest.mark.parametrize("case", ["speech", "tone", "quiet_tail", "silence", "noise"])
def test_trim_bounds_match_librosa(case):
    rng = np.random.default_rng(1)
    y = {
        "speech": np.concatenate([np.zeros(8000, np.float32), speech(), np.zeros(3000, np.float32)]),
        "tone": tone(1.3),
        "quiet_tail": np.concatenate([tone(0.5), 1e-4 * np.ones(7000, np.float32)]),
        "silence": np.zeros(20_000, np.float32),
        "noise": 0.01 * rng.standard_normal(20_001).astype(np.float32),
    }[case]
    config = FeatureConfig()
    _, (start, end) = librosa.effects.trim(y, top_db=config.trim_top_db, frame_length=config.n_fft,
                                           hop_length=config.hop_length)
    expected = (int(start), int(end)) if end > start else (0, len(y))
    assert trim_bounds(y, config) == expected


def test_vad_tells_speech_from_tones_noise_and_silence():
    rng = np.random.default_rng(0)
    assert vad.has_speech(speech())
    for y in (tone(3.0), tone(3.0, freq=1000.0), 0.1 * rng.standard_normal(48_000).astype(np.float32),
              np.zeros(48_000, np.float32), 1e-4 * rng.standard_normal(48_000).astype(np.float32)):
        assert not vad.has_speech(y)
    assert vad.speech_probabilities(np.zeros(0, np.float32)).shape == (0,)


def test_vad_finds_each_utterance_between_pauses():
    gap = np.zeros(SR, np.float32)
    y = np.concatenate([gap, speech(), gap, speech(1.2), gap])
    segments = vad.speech_segments(y)
    assert len(segments) == 2
    (alone_start, alone_end), = vad.speech_segments(speech())  # the clip on its own
    # The same utterance, where it was put; 32-ms chunks, so within two chunks.
    assert abs(segments[0][0] - (SR + alone_start)) <= 1024
    assert abs(segments[0][1] - (SR + alone_end)) <= 1024
    assert segments[1][0] > SR + len(speech()) + 0.5 * SR


def test_clip_gate_looks_at_the_window_the_model_sees():
    """3.3 s of silence then 1.4 s of speech: a start-anchored model's window is all silence,
    so the clip has no speech there (it used to get an emotion from an all-zero window)."""
    y = np.concatenate([np.zeros(int(3.3 * SR), np.float32), speech(2.0)[: int(1.4 * SR)]])
    assert not clip_unit(y, FeatureConfig(anchor="start")).speech
    unit = clip_unit(y, FeatureConfig(anchor="speech"))
    assert unit.speech and unit.start_s > 3.0  # the reported span is the part analysed


def test_recording_units_are_utterances_or_pieces_no_longer_than_a_window():
    """An utterance up to max_clip_s is one unit (placed as that clip alone would be); a
    longer one is cut into equal pieces of at most a window."""
    config = FeatureConfig()
    gap = np.zeros(2 * SR, np.float32)
    long_utterance = np.concatenate([speech(0.6), speech(0.6)])  # about 9 s, no pause
    y = np.concatenate([gap, speech(), gap, long_utterance, gap])
    units = analysis_units(y, config)
    assert len(units) >= 3 and all(u.speech for u in units)
    assert all(u.end_s - u.start_s <= 5.0 for u in units)
    assert units[0].start_s < 2.0 + 0.5 and units[-1].start_s > 2 * 2 + len(speech()) / SR
    assert all(abs(u.speech_s - (u.end_s - u.start_s)) < 1e-6 for u in units)  # the VAD's span
    pieces = utterance_units(np.ones(9 * SR, np.float32), SR, config)
    assert [(p.start_s, p.end_s) for p in pieces] == [(1.0, 4.0), (4.0, 7.0), (7.0, 10.0)]
    alone = utterance_units(speech(), 0, config)
    assert len(alone) == 1 and np.array_equal(alone[0].window, fit_window(speech(), config))
    assert all(len(u.window) == config.window_samples for u in units)
    assert all(a.end_s <= b.start_s for a, b in zip(units, units[1:]))
    assert analysis_units(np.zeros(10 * SR, np.float32), config) == []


def test_split_evenly_and_fit_window():
    assert split_evenly(0, 10, 4) == [(0, 3), (3, 7), (7, 10)]
    assert split_evenly(5, 6, 4) == [(5, 6)]
    config = FeatureConfig(anchor="start")
    out = fit_window(np.ones(1000, np.float32), config)
    assert len(out) == config.window_samples and out[:1000].all() and not out[1000:].any()


def test_whole_anchor_puts_the_speech_first_and_its_length_can_be_read_back():
    from ser.frontends.windows import placement, speech_length

    y = np.concatenate([np.zeros(8000), tone(1.5, freq=220), np.zeros(8000)]).astype(np.float32)
    whole, centred = FeatureConfig(anchor="whole"), FeatureConfig(anchor="speech")
    first, last, offset = placement(y, whole)
    assert offset == 0 and abs(first - 8000) <= 1024 and abs(last - 32000) <= 1024  # frame edges
    assert placement(y, centred)[:2] == (first, last) and placement(y, centred)[2] > 0
    window = fit_window(y, whole)
    assert len(window) == whole.window_samples
    assert speech_length(window, 8000) == last - first  # the tone ends on a non-zero sample
    assert speech_length(np.zeros(48000, np.float32), 8000) == 8000  # at least the minimum
    long = tone(5.0, freq=220)  # longer than the window: its centre, filling the window
    assert speech_length(fit_window(long, whole), 8000) == whole.window_samples
    with pytest.raises(Exception, match="anchor"):
        FeatureConfig(anchor="middle")


def test_a_short_word_is_speech_and_a_hum_onset_is_not():
    """Minimum speech is judged by the time the detector is sure of (chunks at the threshold):
    a 0.5-s piece of speech passes, while mains hum — one chunk over 0.5 at its onset, then a
    long tail above the lower threshold that used to count as 0.22 s of "speech" — does not."""
    from ser.audio import vad

    config = FeatureConfig()
    y = speech()
    start, end = vad.speech_segments(y)[0]
    word = y[start + int(0.2 * SR) : start + int(0.7 * SR)]
    assert analysis_units(word, config)
    t = np.arange(4 * SR) / SR
    hum = (0.3 * sum(np.sin(2 * np.pi * 60 * k * t) / k for k in range(1, 8))).astype(np.float32)
    assert analysis_units(hum, config) == []
    assert analysis_units(hum, FeatureConfig(anchor="start")) == []


def test_streaming_equals_one_pass_and_memory_stays_bounded():
    """Block by block (odd block sizes), the VAD's scores and utterances and the placed windows
    equal those of one pass over the whole recording, while the audio held at once stays far
    below the recording's length."""
    from ser.audio import vad
    from ser.frontends.windows import StreamInfo, stream_units

    gap = np.zeros(int(1.3 * SR), np.float32)
    y = np.concatenate([gap, speech(), gap, speech(1.2), gap] * 8)  # about 55 s
    config = FeatureConfig()
    rng = np.random.default_rng(0)
    edges = np.cumsum(rng.integers(100, 40_000, size=200))
    blocks = [b for b in np.split(y, edges[edges < len(y)]) if len(b)]
    scorer = vad.StreamingScorer()
    scores = np.concatenate([scorer.push(b) for b in blocks] + [scorer.push(np.zeros(0), last=True)])
    np.testing.assert_array_equal(scores, vad.speech_probabilities(y))
    info = StreamInfo()
    streamed = list(stream_units(blocks, config, info=info))
    whole = analysis_units(y, config)
    assert len(streamed) == len(whole) == 16
    for a, b in zip(streamed, whole):
        assert (a.start_s, a.end_s) == (b.start_s, b.end_s)
        np.testing.assert_array_equal(a.window, b.window)
    assert info.utterances == vad.speech_segments(y)
    assert info.buffered_max < 12 * SR < len(y) / 4
