"""Where the model looks: the one window-placement path shared by training, ``ser evaluate``
and prediction.

* A **clip** (input up to ``max_clip_s``, like the corpora's utterances) is placed in one window
  of ``config.window_s`` by :func:`fit_window` — its first seconds (``anchor="start"``), its
  centred speech (``anchor="speech"``) or its speech at the start (``anchor="whole"``, for an
  encoder that then reads only the speech: :func:`speech_length`). The speech gate (Silero VAD) runs on that placed window,
  the samples the model actually sees, and the reported span is the part of the input in it.
* A **recording** (longer input) is cut into utterances by the VAD; an utterance longer than one
  window is split into equal pieces no longer than a window; each piece is then placed like a
  clip. Pauses between utterances are not analysed.

Runs on NumPy and ONNX Runtime only (no librosa, no numba): this is the serving path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from ser.audio import vad
from ser.common import ConfigError
from ser.frontends.features import FeatureConfig, features_from_waveform

#: Input up to this long is one clip, like a corpus utterance (RAVDESS, CREMA-D and TESS clips
#: are at most about 5 s; EMOVO's reach 14 s and are analysed as recordings).
DEFAULT_MAX_CLIP_S = 5.0


@dataclass(frozen=True)
class Unit:
    """One analysed stretch of the input: where it is, and the window the model sees."""

    start_s: float
    end_s: float
    window: np.ndarray  # float32, config.window_samples long
    speech: bool  # the VAD found speech in the window
    speech_s: float = 0.0  # seconds of it the VAD found (for a recording: the utterance piece)
    final: bool = True  # False: a live stream's interim look at speech still going on


@dataclass(frozen=True)
class Detection:
    """The detector's decision in a live stream: ``speech_started`` or ``speech_ended``, and
    where in the stream the speech started or ended."""

    kind: str
    time_s: float


def trim_bounds(y: np.ndarray, config: FeatureConfig) -> tuple[int, int]:
    """Sample range of the non-silent part: frames within ``config.trim_top_db`` of the loudest
    frame's RMS (centred frames of ``n_fft``, hop ``hop_length``). Same rule and result as
    ``librosa.effects.trim`` (checked in the tests), without importing librosa."""
    if y.size == 0:
        return 0, 0
    frame, hop = config.n_fft, config.hop_length
    padded = np.pad(np.asarray(y, np.float64), frame // 2)
    n_frames = 1 + (len(padded) - frame) // hop
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(n_frames, frame), strides=(hop * padded.strides[0], padded.strides[0]))
    power = np.mean(frames**2, axis=1)
    db = 10 * np.log10(np.maximum(power, 1e-10)) - 10 * np.log10(max(power.max(), 1e-10))
    loud = np.flatnonzero(db > -config.trim_top_db)
    if loud.size == 0:
        return 0, len(y)
    start, end = int(loud[0] * hop), int(min(len(y), (loud[-1] + 1) * hop))
    return (start, end) if end > start else (0, len(y))


def placement(y: np.ndarray, config: FeatureConfig) -> tuple[int, int, int]:
    """(first input sample used, last + 1, offset in the window where it lands)."""
    n = config.window_samples
    if config.anchor in ("speech", "whole"):
        start, end = trim_bounds(y, config)
        if end - start > n:  # keep the centre of the speech
            start += (end - start - n) // 2
            return start, start + n, 0
        # "whole": at the start, so that the speech's length can be read back (see speech_length)
        return start, end, (n - (end - start)) // 2 if config.anchor == "speech" else 0
    return 0, min(len(y), n), 0


def speech_length(window: np.ndarray, min_samples: int) -> int:
    """How much of a "whole"-anchored window is the utterance: up to its last non-zero sample
    (the rest is padding), at least ``min_samples``."""
    nonzero = np.flatnonzero(window)
    return min(len(window), max(min_samples, int(nonzero[-1]) + 1 if nonzero.size else 0))


def fit_window(y: np.ndarray, config: FeatureConfig,
               place: tuple[int, int, int] | None = None) -> np.ndarray:
    """Place a clip in one fixed window of ``config.window_s`` (zero-padded or cut);
    ``place`` is :func:`placement`'s answer when the caller has it already."""
    first, last, offset = place or placement(y, config)
    out = np.zeros(config.window_samples, dtype=np.float32)
    out[offset : offset + last - first] = y[first:last]
    return out


def clip_unit(y: np.ndarray, config: FeatureConfig, vad_config: vad.VadConfig = vad.VadConfig(),
              offset_s: float = 0.0, segments: list[tuple[int, int]] | None = None) -> Unit:
    """A clip placed in its window, gated on the part of the input that lands in the window:
    the VAD runs on the clip as recorded (not on the zero-padded window, whose artificial
    silence makes a low hum look like a voiced onset) and at least ``min_speech_s`` of the
    speech it finds must fall inside the window. The unit's span is that speech, as the VAD
    found it (``segments``: its utterances in ``y``, when the caller has them)."""
    place = placement(y, config)  # the trimming runs once
    first, last, _ = place
    window = fit_window(y, config, place)
    sr = config.sample_rate
    found = [(max(s, first), min(e, last)) for s, e in
             (vad.speech_segments(y, vad_config) if segments is None else segments)]
    found = [(s, e) for s, e in found if e > s]
    inside = sum(e - s for s, e in found)
    speech = inside >= vad_config.min_speech_s * sr
    start, end = (found[0][0], found[-1][1]) if found else (first, last)
    return Unit(offset_s + start / sr, offset_s + end / sr, window, speech, inside / sr)


def split_evenly(start: int, end: int, max_len: int) -> list[tuple[int, int]]:
    """[start, end) in the fewest equal pieces of at most ``max_len`` samples."""
    pieces = max(1, -(-(end - start) // max_len))
    edges = np.linspace(start, end, pieces + 1).round().astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


#: An utterance without a pause longer than this is cut here (memory stays bounded): ten
#: 3-s windows, so the pieces are the ones a longer utterance would get anyway.
MAX_UTTERANCE_WINDOWS = 10


#: Audio on each side of an utterance (at most half the pause to its neighbour) that goes
#: into its window's placement: a corpus clip, as trained on, has such quiet around its
#: speech, and the placement then trims it exactly as it trims the clip alone.
UTTERANCE_CONTEXT_S = 1.0


def utterance_units(y: np.ndarray, start: int, config: FeatureConfig,
                    max_clip_s: float = DEFAULT_MAX_CLIP_S, context: tuple[int, int] = (0, 0)
                    ) -> list[Unit]:
    """The units of one utterance that starts at sample ``start`` of a recording; ``y`` is the
    utterance with ``context`` samples of the recording before and after it. Up to
    ``max_clip_s`` one unit, placed as a clip (context included, so the same speech gets the
    same window alone and inside a recording); longer, equal pieces of the utterance of at most
    one window, each placed like a clip. Spans are the utterance's (or piece's) bounds."""
    sr = config.sample_rate
    before, after = context
    n = len(y) - before - after
    if n <= max_clip_s * sr:
        return [Unit(start / sr, (start + n) / sr, fit_window(y, config), True, n / sr)]
    core = y[before : before + n]
    return [Unit((start + a) / sr, (start + b) / sr, fit_window(core[a:b], config), True,
                 (b - a) / sr) for a, b in split_evenly(0, n, config.window_samples)]


def recording_units(y: np.ndarray, config: FeatureConfig,
                    vad_config: vad.VadConfig = vad.VadConfig(),
                    max_clip_s: float = DEFAULT_MAX_CLIP_S) -> list[Unit]:
    """The utterances of a recording in memory, each as :func:`utterance_units` (all have
    speech); the same as :func:`stream_units` gives block by block."""
    return list(stream_units([y], config, max_clip_s, vad_config, clip_first=False))


def analysis_units(y: np.ndarray, config: FeatureConfig, max_clip_s: float = DEFAULT_MAX_CLIP_S,
                   vad_config: vad.VadConfig = vad.VadConfig(), short_pad_s: float = 0.0) -> list[Unit]:
    """The served rule: one clip unit for short input, utterance units for a recording.

    An empty list means the input has no speech."""
    return list(stream_units([y], config, max_clip_s, vad_config, short_pad_s=short_pad_s))


def clip_segments(y: np.ndarray, vad_config: vad.VadConfig, pad_s: float = 0.0) -> list[tuple[int, int]]:
    """The detector's utterances in a clip; when it finds none and ``pad_s`` is given, a
    second look with ``pad_s`` of silence on each side (Silero misses a word that starts at
    the first sample: FSDD's trimmed digits), bounds clipped to the clip."""
    segments = vad.speech_segments(y, vad_config)
    if segments or not pad_s:
        return segments
    pad = int(pad_s * vad.SAMPLE_RATE)
    padded = vad.speech_segments(np.pad(y, pad), vad_config)
    return [(max(0, s - pad), min(len(y), e - pad)) for s, e in padded if min(len(y), e - pad) > max(0, s - pad)]


@dataclass
class StreamInfo:
    """What :func:`stream_units` knows once its input has ended."""

    samples: int = 0
    clip: bool = False  # analysed as one clip (input up to max_clip_s)
    buffered_max: int = 0  # the most samples held at once (the memory bound, for tests)
    utterances: list[tuple[int, int]] = field(default_factory=list)


def stream_units(blocks: Iterable[np.ndarray], config: FeatureConfig,
                 max_clip_s: float = DEFAULT_MAX_CLIP_S,
                 vad_config: vad.VadConfig = vad.VadConfig(), info: StreamInfo | None = None,
                 clip_first: bool = True, context_after_s: float | None = None,
                 interim_every_s: float | None = None, short_pad_s: float = 0.0
                 ) -> Iterator[Unit | Detection]:
    """Units of audio given as consecutive 16-kHz blocks, yielded as soon as each utterance
    is complete: input that ends within ``max_clip_s`` is one clip (:func:`clip_unit`),
    anything longer a recording cut by the VAD into utterances (:func:`utterance_units`).
    Only the audio an unfinished utterance may still need is kept, so memory does not grow
    with the input's length. Only units with speech are yielded; ``short_pad_s``: a clip
    without speech gets a second look (:func:`clip_segments`).

    ``interim_every_s`` (live streams, with ``clip_first=False``): also yield the detector's
    :class:`Detection` s and interim units (``final=False``) — the last window of speech that
    has gone on for a window or more, at least every ``interim_every_s`` of it, and the whole
    utterance as soon as the detector ends it, with the context known by then (its final
    unit waits for the context after it). They change nothing in the final units."""
    if config.sample_rate != vad.SAMPLE_RATE:
        raise ConfigError(f"the VAD runs at {vad.SAMPLE_RATE} Hz, not {config.sample_rate} Hz")
    info = info if info is not None else StreamInfo()
    sr = config.sample_rate
    limit = int(max_clip_s * sr)
    head: list[np.ndarray] = []
    blocks = iter(blocks)
    held = 0
    if clip_first:
        for block in blocks:  # up to max_clip_s: maybe a clip
            head.append(np.asarray(block, np.float32))
            held += len(block)
            if held > limit:
                break
        else:
            y = np.concatenate(head) if head else np.zeros(0, np.float32)
            info.samples, info.clip, info.buffered_max = len(y), True, len(y)
            segments = clip_segments(y, vad_config, short_pad_s)
            info.utterances = segments
            unit = clip_unit(y, config, vad_config, segments=segments)
            if unit.speech:
                yield unit
            return
    scorer, segmenter = vad.StreamingScorer(), vad.Segmenter(vad_config)
    buffer, buffer_start = np.zeros(0, np.float32), 0
    max_utterance_s = MAX_UTTERANCE_WINDOWS * config.window_s
    context = int(UTTERANCE_CONTEXT_S * sr)
    after = context if context_after_s is None else int(context_after_s * sr)
    waiting: list[tuple[int, int]] = []  # complete utterances waiting for the audio after them
    previous_end = 0
    speech_from = last_interim = None  # live: where the speech being heard began, last look
    window = config.window_samples

    def interim(first: int, now: int, span: tuple[int, int]) -> Unit:
        """A look at the audio from ``first`` to ``now``, reported as the speech in ``span``."""
        y = buffer[max(first, buffer_start) - buffer_start : now - buffer_start]
        return Unit(span[0] / sr, span[1] / sr, fit_window(y, config), True,
                    (span[1] - span[0]) / sr, False)

    def detections():
        """The detector's decisions on the last block, and the interim looks they call for."""
        nonlocal speech_from, last_interim
        for kind, sample in segmenter.events:
            yield Detection(kind, sample / sr)
            if kind == "speech_started":
                speech_from = last_interim = sample
            elif speech_from is not None:  # ended: the utterance, as much as is known
                before = max([previous_end] + [e for s, e in waiting if e < speech_from])
                first = max(speech_from - segmenter.pad - context, sample - int(max_clip_s * sr),
                            (before + speech_from + 1) // 2)
                yield interim(first, info.samples, (max(0, speech_from - segmenter.pad),
                                                    min(info.samples, sample + segmenter.pad)))
                speech_from = None
        segmenter.events.clear()
        now = info.samples
        if (speech_from is not None and now - speech_from >= window
                and now - last_interim >= interim_every_s * sr):
            last_interim = now
            yield interim(now - window, now, (max(speech_from - segmenter.pad, now - window), now))

    def context_end(s: int, e: int, lo: int, final: bool) -> int | None:
        """Where the context after the utterance (s, e) ends, or None while that is open.
        Where the next utterance starts bounds it (the context stops half-way to it): known
        when that one has closed (or follows a cut); else, once nothing can start within
        twice the context, the context is whole anyway (the detector releases an utterance as
        soon as nothing can merge with it, so a pause of ~2 s is enough to report it)."""
        if len(waiting) > 1:
            following = waiting[1][0]
        elif segmenter.held is not None or segmenter.open_is_speech or (
                segmenter.cut_at is not None and segmenter.start is not None):
            following = segmenter.start_sample
        elif final:
            return min(e + after, info.samples)
        elif segmenter.next_start_bound() >= e + 2 * after or (
                info.samples >= e + after and same_either_way(s, e, lo)):
            return e + after
        else:
            return None
        return min(e + after, (e + following) // 2)

    def same_either_way(s: int, e: int, lo: int) -> bool:
        """Whether the windows are the same at both possible ends of the context (between
        half-way to the earliest next start and e + after): then every end between gives
        that window (the quiet after the speech is trimmed either way), and the utterance is
        reported ~1 s after its speech instead of ~2 s, exactly as if the next start were known."""
        earliest = min(e + after, max(e, (e + segmenter.next_start_bound()) // 2))
        whole, shortest = (utterance_units(buffer[lo - buffer_start : end - buffer_start], s, config,
                                           max_clip_s, (s - lo, end - e))
                           for end in (e + after, earliest))
        return all(np.array_equal(a.window, b.window) for a, b in zip(whole, shortest))

    def ready(final: bool):
        """Units of the waiting utterances whose context after them is known."""
        nonlocal previous_end
        while waiting:
            s, e = waiting[0]
            lo = max(s - context, (previous_end + s + 1) // 2, buffer_start)
            hi = context_end(s, e, lo, final)
            if hi is None:
                return
            waiting.pop(0)
            info.utterances.append((s, e))
            previous_end = e
            yield from utterance_units(buffer[lo - buffer_start : hi - buffer_start], s, config,
                                       max_clip_s, (s - lo, hi - e))

    def chained():
        yield from head
        yield from blocks

    for block in chained():
        block = np.asarray(block, np.float32)
        buffer = np.concatenate([buffer, block])
        info.samples += len(block)
        info.buffered_max = max(info.buffered_max, len(buffer))
        waiting += segmenter.push(scorer.push(block)) + segmenter.cut(max_utterance_s)
        if interim_every_s is not None:
            yield from detections()
        yield from ready(final=False)
        keep_from = min([segmenter.needed_from] + [s for s, _ in waiting]) - context
        keep_from = max(keep_from, min(previous_end, segmenter.needed_from))
        if keep_from > buffer_start:
            buffer = buffer[keep_from - buffer_start :].copy()
            buffer_start = keep_from
    waiting += (segmenter.push(scorer.push(np.zeros(0, np.float32), last=True))
                + segmenter.finish(info.samples))
    if interim_every_s is not None:
        yield from detections()
    yield from ready(final=True)


def clip_features(y: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Hand-made features of a short clip placed in one window: (config.n_frames, config.n_features)."""
    return features_from_waveform(fit_window(y, config), config)
