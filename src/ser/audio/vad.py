"""Voice activity detection with Silero VAD (MIT licence; ``assets/SILERO_VAD_LICENSE``).

The model file ships inside the package (``assets/silero_vad.onnx``: Silero VAD v6's 16-kHz
sequence graph from the ``silero-vad`` 6.2.3 wheel, 1.2 MB) and runs on ONNX Runtime, which
inference uses anyway: no torch, no download. One ORT call scores a whole recording, one
probability of speech per 32-ms chunk (512 samples at 16 kHz, each seen with the 64 samples
before it, as Silero's own streaming code does).

Tones, noise, music and silence score near 0; speech near 1. ``speech_segments`` turns the
scores into utterances with hysteresis (start at ``threshold``, end below ``threshold - 0.15``
after ``min_silence_s``), drops blips shorter than ``min_speech_s`` and pads each side.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

import numpy as np

SAMPLE_RATE = 16_000
CHUNK = 512  # samples per score (32 ms)
CONTEXT = 64  # samples of the previous chunk each score also sees
MODEL_SHA256 = "9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85"


@dataclass(frozen=True)
class VadConfig:
    threshold: float = 0.5
    # Shorter speech is a click or a breath, not an utterance. 0.1 s keeps more short words
    # than 0.25 did (0.5-1.5-s excerpts of corpus speech refused clean 1.4% vs 3.6%, at 10 dB
    # 10.5% vs 12.3%) while the generated tones, noise, hum and clicks stay refused
    # (python benchmarks/vad.py --words).
    min_speech_s: float = 0.1
    min_silence_s: float = 0.3  # a shorter pause does not end an utterance
    pad_s: float = 0.1  # kept on each side of an utterance (word onsets are soft)

    @property
    def neg_threshold(self) -> float:
        return max(self.threshold - 0.15, 0.01)


class VadModelError(RuntimeError):
    """The packaged VAD model is missing or damaged (a broken installation)."""


@lru_cache(maxsize=1)
def _session():
    import onnxruntime as ort

    path = files("ser") / "assets" / "silero_vad.onnx"
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != MODEL_SHA256:
        raise VadModelError(f"{path} does not match its sha256: reinstall ser")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # tiny model: threads cost more than they bring
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _rows(y: np.ndarray, context: np.ndarray) -> np.ndarray:
    """(chunks, 64 + 512): each chunk of ``y`` (zero-padded to whole chunks) after the 64
    samples before it (``context``: the end of the previous audio)."""
    n = -(-len(y) // CHUNK)
    padded = np.zeros(CONTEXT + n * CHUNK, np.float32)
    padded[:CONTEXT] = context
    padded[CONTEXT : CONTEXT + len(y)] = y
    return np.lib.stride_tricks.as_strided(
        padded, shape=(n, CONTEXT + CHUNK), strides=(CHUNK * 4, 4)).copy()


class StreamingScorer:
    """Speech probabilities of audio given block by block: the model's state and the 64-sample
    context are carried between calls, so the scores equal one pass over the whole signal
    (a test checks) while memory stays that of one block."""

    def __init__(self):
        self.state = (np.zeros((1, 1, 128), np.float32), np.zeros((1, 1, 128), np.float32))
        self.context = np.zeros(CONTEXT, np.float32)
        self.pending = np.zeros(0, np.float32)  # samples short of a whole chunk

    def push(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        y = np.concatenate([self.pending, np.asarray(block, np.float32)])
        whole = len(y) if last else len(y) // CHUNK * CHUNK
        self.pending = y[whole:]
        if whole == 0:
            return np.zeros(0, np.float32)
        rows = _rows(y[:whole], self.context)
        self.context = rows[-1, -CONTEXT:].copy()
        # One session shared by every thread: ONNX Runtime's run is thread-safe, and no lock,
        # so a long recording's VAD pass never makes a short request wait.
        probs, h, c = _session().run(None, {"input": rows, "h": self.state[0], "c": self.state[1]})
        self.state = (h, c)
        return np.asarray(probs, np.float32).reshape(-1)


def speech_probabilities(y: np.ndarray) -> np.ndarray:
    """One speech probability per 32-ms chunk of 16-kHz mono audio (the last partial chunk is
    zero-padded); empty input gives an empty array."""
    return StreamingScorer().push(y, last=True)


class Segmenter:
    """Utterances from speech probabilities given in order, as soon as each is certain: start
    at ``threshold``, end after ``min_silence_s`` below ``threshold - 0.15``; blips shorter than
    ``min_speech_s`` dropped; ``pad_s`` added each side; utterances that padding makes touch,
    merged. Bounds are sample indices at 16 kHz."""

    def __init__(self, config: VadConfig = VadConfig()):
        self.config = config
        self.min_silence = int(np.ceil(config.min_silence_s * SAMPLE_RATE / CHUNK))
        self.pad = int(config.pad_s * SAMPLE_RATE)
        self.index = 0  # chunks seen
        self.start: int | None = None
        self.quiet = 0
        self.voiced = 0  # chunks of the open utterance at or above the threshold
        self.held: tuple[int, int] | None = None  # padded, waiting for a possible merge
        self.cut_at: int | None = None  # where a cut utterance goes on, without padding
        # The detector's decisions as they happen, for a live display: ("speech_started",
        # sample) once the open utterance has enough sure speech to be kept, ("speech_ended",
        # sample) when it closes (unpadded bounds). Whoever reads them empties the list.
        self.events: list[tuple[str, int]] = []
        self._announced = False

    def push(self, probs: np.ndarray) -> list[tuple[int, int]]:
        """The utterances that these scores complete."""
        out: list[tuple[int, int]] = []
        for p in probs:
            i = self.index
            self.index += 1
            if self.start is None:
                if p >= self.config.threshold:
                    self.start, self.quiet, self.voiced = i, 0, 1
                out += self._release()
                continue
            self.voiced += p >= self.config.threshold
            if not self._announced and self.open_is_speech:
                self._announced = True
                self.events.append(("speech_started", self.start * CHUNK))
            if p < self.config.neg_threshold:
                self.quiet += 1
                if self.quiet >= self.min_silence:
                    out += self._close(self.start * CHUNK, (i - self.quiet + 1) * CHUNK, None)
                    self._ended((i - self.quiet + 1) * CHUNK)
                    self.start = None
            else:
                self.quiet = 0
            out += self._release()
        return out

    def _ended(self, sample: int) -> None:
        if self._announced:
            self.events.append(("speech_ended", sample))
        self._announced = False

    def _release(self) -> list[tuple[int, int]]:
        """The held utterance, as soon as no later one can merge with it: every utterance
        still to come starts (padded) after it ends. The same utterances as holding it until
        the next one closes, only sooner (a live stream reports it a pause later, not an
        utterance later)."""
        if self.held is None or self.cut_at is not None or self.next_start_bound() <= self.held[1]:
            return []
        done, self.held = [self.held], None
        return done

    @property
    def open_is_speech(self) -> bool:
        """Whether the utterance being heard has enough sure speech to be kept when it closes
        (then its start is final: :attr:`start_sample`)."""
        return (self.start is not None
                and self.voiced * CHUNK >= self.config.min_speech_s * SAMPLE_RATE)

    def next_start_bound(self) -> int:
        """No utterance still to come starts (padded) before this sample."""
        first = self.start if self.start is not None else self.index
        return max(0, first * CHUNK - self.pad)

    def finish(self, n_samples: int) -> list[tuple[int, int]]:
        """The remaining utterances, once the input (``n_samples`` long) has ended."""
        out = []
        if self.start is not None:
            end = min((self.index - self.quiet) * CHUNK, n_samples)
            out += self._close(self.start * CHUNK, end, n_samples)
            self._ended(end)
            self.start = None
        if self.held is not None:
            out.append((self.held[0], min(self.held[1], n_samples)))
            self.held = None
        return out

    def cut(self, max_s: float) -> list[tuple[int, int]]:
        """End an utterance that has gone on for ``max_s`` without a pause here, and go on with
        the rest as a new one (bounded memory for speech without pauses)."""
        if self.start is None or (self.index - self.start) * CHUNK < max_s * SAMPLE_RATE:
            return []
        end = self.index * CHUNK
        out = ([self.held] if self.held is not None else []) + [(max(0, self.start * CHUNK - self.pad), end)]
        self.held, self.start, self.quiet, self.voiced = None, self.index, 0, 0
        self.cut_at = end  # the next utterance starts here exactly, without padding before it
        return out

    @property
    def start_sample(self) -> int | None:
        """Where the utterance being heard now began (None in a pause): it bounds the one
        before."""
        if self.held is not None:
            return self.held[0]
        return None if self.start is None else max(0, self.start * CHUNK - self.pad)

    @property
    def needed_from(self) -> int:
        """The first sample an utterance still to come may include: earlier audio can go."""
        if self.held is not None:
            return self.held[0]
        first = self.start * CHUNK if self.start is not None else self.index * CHUNK
        return self.cut_at if self.cut_at is not None else max(0, first - self.pad)

    def _close(self, s: int, e: int, n_samples: int | None) -> list[tuple[int, int]]:
        # Speech is judged by the time the detector is sure of (chunks at the threshold), not by
        # the span the hysteresis keeps open: a hum's onset scores one chunk over 0.5 and then
        # lingers above the lower threshold for a while.
        if self.voiced * CHUNK < self.config.min_speech_s * SAMPLE_RATE and self.cut_at is None:
            return []
        s = self.cut_at if self.cut_at is not None else max(0, s - self.pad)
        self.cut_at = None
        e = e + self.pad if n_samples is None else min(n_samples, e + self.pad)
        if self.held is not None and s <= self.held[1]:  # padding made two touch: merge
            self.held = (self.held[0], e)
            return []
        done, self.held = ([self.held] if self.held is not None else []), (s, e)
        return done


def speech_segments(
    y: np.ndarray, config: VadConfig = VadConfig(), probs: np.ndarray | None = None,
) -> list[tuple[int, int]]:
    """Utterances as (start, end) sample indices into ``y`` (16 kHz), in order, non-overlapping."""
    if probs is None:
        probs = speech_probabilities(y)
    segmenter = Segmenter(config)
    return segmenter.push(probs) + segmenter.finish(len(y))


def speech_seconds(y: np.ndarray, config: VadConfig = VadConfig()) -> float:
    """Seconds of speech in ``y`` (16 kHz): the utterances' total length, padding included."""
    return sum(e - s for s, e in speech_segments(y, config)) / SAMPLE_RATE


def has_speech(y: np.ndarray, config: VadConfig = VadConfig()) -> bool:
    return bool(speech_segments(y, config))
