"""Augmentation of training audio (waveform) and features (time/frequency masking), and the
recording conditions the robustness figures are measured under.

Waveform variants, each a fixed random draw per (clip, variant), so that a copy is
reproducible and cacheable like the clean features:

* ``"aug<N>"``: the classic chain (noise, gain, pitch shift, time stretch; audiomentations);
* ``"cond<N>"``: one recording condition per copy, drawn from :data:`TRAINING_CONDITIONS`
  with random settings (noise of three colours at 0-20 dB SNR, a room, a telephone channel,
  Opus or MP3 at a low bit rate, a low level, a word-length excerpt);
* ``"bench"``: one of the robustness benchmark's fixed conditions (:data:`BENCHMARK_CONDITIONS`)
  — a different draw from any training copy (the seed includes the variant's name), used to
  score held-out speakers (``ser cv --test-conditions``).

Only training clips are ever augmented, after the split.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random

import numpy as np


def _seed(seed_key: str, variant: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed_key}|{variant}".encode()).digest()[:4], "little")


#: The augmentation chain's settings; their hash is part of the cache key of augmented
#: features, so changing a number here recomputes them.
AUGMENTATION = {
    "AddGaussianSNR": {"min_snr_db": 10.0, "max_snr_db": 35.0, "p": 0.5},
    "Gain": {"min_gain_db": -6.0, "max_gain_db": 6.0, "p": 0.5},
    "PitchShift": {"min_semitones": -2.0, "max_semitones": 2.0, "p": 0.5},
    "TimeStretch": {"min_rate": 0.85, "max_rate": 1.15, "leave_length_unchanged": False, "p": 0.5},
}
AUGMENTATION_KEY = hashlib.sha256(json.dumps(AUGMENTATION, sort_keys=True).encode()).hexdigest()[:12]


def augmentation_key(variant: str) -> str:
    """The settings' hash that goes into an augmented copy's cache key."""
    return CONDITIONS_KEY if variant.startswith(("cond", "bench")) else AUGMENTATION_KEY


def augment_waveform(y: np.ndarray, sample_rate: int, variant: str, seed_key: str) -> np.ndarray:
    """The variant's copy of ``y`` (see the module's docstring)."""
    if variant == "bench":
        rng = np.random.default_rng(_seed(seed_key, variant))
        return corrupt(y, sample_rate, benchmark_condition(seed_key), rng)
    if variant.startswith("cond"):
        rng = np.random.default_rng(_seed(seed_key, variant))
        return training_condition(y, sample_rate, rng)
    return _classic(y, sample_rate, variant, seed_key)


def _classic(y: np.ndarray, sample_rate: int, variant: str, seed_key: str) -> np.ndarray:
    """Noise at a random SNR, gain, pitch shift and time stretch, each with probability 1/2."""
    import audiomentations

    chain = audiomentations.Compose([getattr(audiomentations, name)(**params)
                                     for name, params in AUGMENTATION.items()])
    # audiomentations draws from the process-global generators: seed them for this clip and
    # variant, then give the caller's generators back their state.
    saved = random.getstate(), np.random.get_state()
    seed = _seed(seed_key, variant)
    random.seed(seed)
    np.random.seed(seed)
    try:
        out = chain(samples=y.astype(np.float32), sample_rate=sample_rate)
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
    return _full_scale(out)  # keep within full scale, as a recording would be


def mask_features(
    x: np.ndarray,
    rng: np.random.Generator,
    max_time: int = 20,
    max_freq: int = 16,
    n_masks: int = 1,
) -> np.ndarray:
    """SpecAugment-style masks on standardised features (batch, frames, features): set to 0.

    Each clip gets ``n_masks`` time spans of 0..max_time frames and feature bands of
    0..max_freq features, drawn independently; vectorised, since it runs on every batch."""
    batch, frames, feats = x.shape

    def spans(width: int, size: int) -> np.ndarray:  # (batch, size) bool, True = masked
        length = rng.integers(0, width + 1, size=(batch, n_masks))
        start = np.floor(rng.random((batch, n_masks)) * np.maximum(1, size - length)).astype(int)
        pos = np.arange(size)[None, None, :]
        hit = (pos >= start[..., None]) & (pos < (start + length)[..., None])
        return hit.any(axis=1)

    keep = ~(spans(max_time, frames)[:, :, None] | spans(max_freq, feats)[:, None, :])
    return x * keep


# --- Recording conditions -------------------------------------------------------------------

#: The robustness benchmark's conditions (benchmarks/robustness.py adds babble, which needs
#: other speakers' clips). Each: (family, setting).
BENCHMARK_CONDITIONS = {
    "white noise 20 dB": ("white", 20.0),
    "white noise 10 dB": ("white", 10.0),
    "white noise 5 dB": ("white", 5.0),
    "pink noise 10 dB": ("pink", 10.0),
    "room RT60 0.3 s": ("room", 0.3),
    "room RT60 0.8 s": ("room", 0.8),
    "telephone (8 kHz, mu-law)": ("telephone", 0.0),
    "Opus 12 kbit/s": ("opus", 12_000),
    "MP3 32 kbit/s": ("mp3", 32_000),
    "level -30 dBFS": ("level", -30.0),
    "excerpt 0.5-1.5 s": ("excerpt", 0.0),
}
#: Training copies (``cond<N>``): a family drawn uniformly, its setting from a range.
TRAINING_CONDITIONS = {
    "white": (0.0, 20.0),  # SNR dB
    "pink": (0.0, 20.0),
    "brown": (0.0, 20.0),
    "room": (0.2, 1.0),  # RT60 s
    "telephone": (0.0, 0.0),
    "opus": (8_000, 24_000),  # bit/s
    "mp3": (24_000, 64_000),
    "level": (-40.0, -20.0),  # dBFS peak
    "excerpt": (0.5, 2.0),  # s
}
CONDITIONS_KEY = hashlib.sha256(json.dumps(
    [BENCHMARK_CONDITIONS, TRAINING_CONDITIONS, "v1"], sort_keys=True).encode()).hexdigest()[:12]


def benchmark_condition(seed_key: str) -> str:
    """Which benchmark condition the ``bench`` copy of a clip gets (uniform over them)."""
    names = list(BENCHMARK_CONDITIONS)
    return names[_seed(seed_key, "bench-condition") % len(names)]


def training_condition(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    family = list(TRAINING_CONDITIONS)[rng.integers(len(TRAINING_CONDITIONS))]
    low, high = TRAINING_CONDITIONS[family]
    return apply_condition(y, sr, family, float(rng.uniform(low, high)), rng)


def corrupt(y: np.ndarray, sr: int, name: str, rng: np.random.Generator) -> np.ndarray:
    """``y`` under the named benchmark condition."""
    family, setting = BENCHMARK_CONDITIONS[name]
    return apply_condition(y, sr, family, setting, rng)


def apply_condition(y: np.ndarray, sr: int, family: str, setting: float,
                    rng: np.random.Generator) -> np.ndarray:
    y = np.asarray(y, np.float32)
    if family in ("white", "pink", "brown"):
        noise = coloured_noise(len(y), {"white": 0, "pink": 1, "brown": 2}[family], rng, sr)
        return at_snr(y, noise, setting)
    if family == "room":
        return room(y, setting, rng, sr)
    if family == "telephone":
        return telephone(y, sr)
    if family in ("opus", "mp3"):
        return codec(y, sr, family, int(setting))
    if family == "level":
        return (y * 10 ** (setting / 20) / (np.abs(y).max() + 1e-9)).astype(np.float32)
    if family == "excerpt":
        return excerpt(y, sr, rng, *((0.5, 1.5) if setting == 0.0 else (setting, setting)))
    raise ValueError(f"unknown condition family {family!r}")


def at_snr(y: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``noise`` added at ``snr_db`` below the signal's power (over the whole clip)."""
    noise = noise[: len(y)]
    gain = np.sqrt(np.mean(y**2) / (np.mean(noise**2) * 10 ** (snr_db / 10) + 1e-12))
    return _full_scale(y + gain * noise)


def coloured_noise(n: int, exponent: float, rng: np.random.Generator, sr: int = 16_000) -> np.ndarray:
    """Noise with a 1/f**exponent power spectrum (0 white, 1 pink, 2 brown)."""
    x = rng.standard_normal(n)
    if exponent == 0 or n < 2:
        return x.astype(np.float32)
    spectrum = np.fft.rfft(x)
    f = np.fft.rfftfreq(n, 1 / sr)
    spectrum[1:] /= f[1:] ** (exponent / 2)
    spectrum[0] = 0
    return np.fft.irfft(spectrum, n).astype(np.float32)


def room(y: np.ndarray, rt60: float, rng: np.random.Generator, sr: int = 16_000) -> np.ndarray:
    """Convolution with exponentially decaying noise (60 dB down after ``rt60``), a direct
    path first; the peak level kept."""
    from scipy.signal import fftconvolve

    t = np.arange(int(rt60 * sr)) / sr
    rir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    rir[0] = 1.0
    out = fftconvolve(y, rir)[: len(y)]
    return (out * np.abs(y).max() / (np.abs(out).max() + 1e-9)).astype(np.float32)


def telephone(y: np.ndarray, sr: int = 16_000) -> np.ndarray:
    """8 kHz, 300-3,400 Hz band, 8-bit mu-law, back to ``sr``."""
    import soxr
    from scipy.signal import butter, sosfilt

    narrow = soxr.resample(y, sr, 8_000)
    narrow = sosfilt(butter(4, [300, 3400], btype="band", fs=8_000, output="sos"), narrow)
    mu = 255.0
    coded = np.sign(narrow) * np.log1p(mu * np.minimum(np.abs(narrow), 1.0)) / np.log1p(mu)
    coded = np.round(coded * 127) / 127
    expanded = np.sign(coded) * ((1 + mu) ** np.abs(coded) - 1) / mu
    return soxr.resample(expanded.astype(np.float32), 8_000, sr).astype(np.float32)


def codec(y: np.ndarray, sr: int, name: str, bitrate: int) -> np.ndarray:
    """Through Opus (48 kHz in Ogg) or MP3 at ``bitrate`` bit/s and back (PyAV)."""
    import soxr

    from ser.audio import decode

    codec_name, container, rate = {"opus": ("libopus", "ogg", 48_000),
                                   "mp3": ("libmp3lame", "mp3", sr)}[name]
    x = soxr.resample(y, sr, rate).astype(np.float32) if rate != sr else np.asarray(y, np.float32)
    buf = io.BytesIO()
    encode_with_pyav(buf, x, rate, container, codec_name, bitrate)
    return decode(buf.getvalue(), sr, min_duration_s=None, max_duration_s=None).samples[: len(y)]


def encode_with_pyav(target, y: np.ndarray, sr: int, container: str, codec_name: str,
                     bitrate: int | None = None) -> None:
    """Write mono float audio with FFmpeg (PyAV) to a path or binary file object, in 960-sample
    frames (PyAV re-buffers them to the codec's frame size)."""
    import av

    with av.open(str(target) if isinstance(target, os.PathLike) else target, "w",
                 format=container) as out:
        stream = out.add_stream(codec_name, rate=sr)
        stream.layout = "mono"
        if bitrate is not None:
            stream.bit_rate = bitrate
        for start in range(0, len(y), 960):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(y[None, start : start + 960], dtype=np.float32),
                format="flt", layout="mono")
            frame.sample_rate = sr
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def excerpt(y: np.ndarray, sr: int, rng: np.random.Generator, shortest_s: float = 0.5,
            longest_s: float = 1.5) -> np.ndarray:
    """A word-length piece of the speech: within the VAD's utterances when it finds any."""
    from ser.audio import vad

    n = int(rng.uniform(shortest_s, longest_s) * sr)
    if len(y) <= n:
        return y
    lo, hi = 0, len(y)
    if sr == vad.SAMPLE_RATE:
        segments = vad.speech_segments(y)
        if segments:
            lo, hi = segments[0][0], segments[-1][1]
    hi = max(hi, lo + n)
    start = int(rng.integers(lo, min(hi, len(y)) - n + 1)) if min(hi, len(y)) - n >= lo else 0
    return y[start : start + n]


def _full_scale(y: np.ndarray) -> np.ndarray:
    peak = np.abs(y).max() if y.size else 0.0
    return (y / peak if peak > 1.0 else y).astype(np.float32)
