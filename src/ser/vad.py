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
    min_speech_s: float = 0.25  # shorter speech is a click or a breath, not an utterance
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


def speech_probabilities(y: np.ndarray) -> np.ndarray:
    """One speech probability per 32-ms chunk of 16-kHz mono audio (the last partial chunk is
    zero-padded); empty input gives an empty array."""
    y = np.asarray(y, dtype=np.float32)
    n = -(-len(y) // CHUNK)
    if n == 0:
        return np.zeros(0, np.float32)
    padded = np.zeros(CONTEXT + n * CHUNK, np.float32)
    padded[CONTEXT : CONTEXT + len(y)] = y
    # Row i: the 64 samples before chunk i, then chunk i (a strided view, copied once).
    rows = np.lib.stride_tricks.as_strided(
        padded, shape=(n, CONTEXT + CHUNK), strides=(CHUNK * 4, 4)).copy()
    state = np.zeros((1, 1, 128), np.float32)
    # One session shared by every thread: ONNX Runtime's run is thread-safe, and no lock, so
    # a long recording's VAD pass never makes a short request wait.
    probs = _session().run(None, {"input": rows, "h": state, "c": state})[0]
    return np.asarray(probs, np.float32).reshape(-1)


def speech_segments(
    y: np.ndarray, config: VadConfig = VadConfig(), probs: np.ndarray | None = None,
) -> list[tuple[int, int]]:
    """Utterances as (start, end) sample indices into ``y`` (16 kHz), in order, non-overlapping."""
    if probs is None:
        probs = speech_probabilities(y)
    min_silence = int(np.ceil(config.min_silence_s * SAMPLE_RATE / CHUNK))
    segments: list[list[int]] = []
    start, quiet = None, 0
    for i, p in enumerate(probs):
        if start is None:
            if p >= config.threshold:
                start, quiet = i, 0
            continue
        if p < config.neg_threshold:
            quiet += 1
            if quiet >= min_silence:
                segments.append([start, i - quiet + 1])
                start = None
        else:
            quiet = 0
    if start is not None:
        segments.append([start, len(probs) - quiet])
    pad = int(config.pad_s * SAMPLE_RATE)
    out: list[tuple[int, int]] = []
    for s, e in segments:
        s_samp, e_samp = s * CHUNK, min(e * CHUNK, len(y))
        if e_samp - s_samp < config.min_speech_s * SAMPLE_RATE:
            continue
        s_samp, e_samp = max(0, s_samp - pad), min(len(y), e_samp + pad)
        if out and s_samp <= out[-1][1]:  # padding made two utterances touch: merge
            out[-1] = (out[-1][0], e_samp)
        else:
            out.append((s_samp, e_samp))
    return out


def speech_seconds(y: np.ndarray, config: VadConfig = VadConfig()) -> float:
    """Seconds of speech in ``y`` (16 kHz): the utterances' total length, padding included."""
    return sum(e - s for s, e in speech_segments(y, config)) / SAMPLE_RATE


def has_speech(y: np.ndarray, config: VadConfig = VadConfig()) -> bool:
    return bool(speech_segments(y, config))
