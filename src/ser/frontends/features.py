"""Feature pipeline: waveform -> (frames x features) matrix, computed from one shared STFT.

The reference design concatenates, per frame: 40 MFCC, their delta, 12 chroma (STFT), 128 log-mel
bands, 7 spectral-contrast bands and 6 tonnetz dimensions = 233 features.

Choices settled by measurement (``benchmarks/features.py``, ``benchmarks/bandwidth.py``):

* **16 kHz, band 0-8 kHz.** CREMA-D carries nothing above 8 kHz while RAVDESS and EMOVO do; at
  22,050 Hz the top band alone tells the corpus apart. At 16 kHz every corpus has the same band.
* **One STFT** feeds every feature; filter banks are built once per configuration.
* **Tonnetz from the STFT chroma.** librosa's default tonnetz runs a CQT chroma (often after a
  harmonic/percussive separation), which costs about 10x all other features together. Tonnetz
  is a fixed linear projection of chroma, so we project the chroma we already have.
* **Fixed tuning** (0 cents) for chroma: per-clip tuning estimation is slow and on speech noisy.
* **NumPy only** (:mod:`ser.frontends.dsp`): the same numbers as librosa (tests compare), without importing
  numba, which cost the hand-made-feature models seconds per start and 200 MB.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

import numpy as np

from ser.common import ConfigError
from ser.frontends.dsp import (
    chroma_filters, dct_matrix, delta, magnitude_spectrogram, mel_filters, power_spectrogram, power_to_db,
    spectral_contrast, tonnetz,
)

FEATURE_VERSION = 1  # bump when the computation changes, so caches and bundles notice


ANCHORS = ("speech", "start", "whole")


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that determines the feature matrix. Hashable and JSON round-trippable."""

    sample_rate: int = 16_000
    window_s: float = 3.0
    n_fft: int = 1024
    hop_length: int = 320  # 20 ms
    n_mfcc: int = 40
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None  # None: Nyquist
    contrast_fmin: float = 100.0
    contrast_bands: int = 6
    # How a clip is placed in the fixed window: "start" keeps its first window_s seconds (the
    # reference); "speech" trims leading/trailing silence first and centres what remains;
    # "whole" trims and puts the speech at the window's start, and an encoder then analyses
    # only the speech (up to window_s), not the padding: whole utterances.
    anchor: str = "speech"
    trim_top_db: float = 40.0
    version: int = FEATURE_VERSION

    def __post_init__(self) -> None:
        if self.anchor not in ANCHORS:
            raise ConfigError(f"anchor must be one of {', '.join(ANCHORS)}, not {self.anchor!r}")
        nyquist = self.sample_rate / 2
        if self.contrast_fmin * 2**self.contrast_bands >= nyquist:
            raise ConfigError("contrast_fmin * 2**contrast_bands must stay below Nyquist")
        if self.window_s <= 0 or self.hop_length <= 0 or self.n_fft <= 0:
            raise ConfigError("window_s, hop_length and n_fft must be positive")

    @property
    def window_samples(self) -> int:
        return int(round(self.window_s * self.sample_rate))

    @property
    def n_frames(self) -> int:
        return 1 + self.window_samples // self.hop_length

    @property
    def n_features(self) -> int:
        return 2 * self.n_mfcc + 12 + self.n_mels + (self.contrast_bands + 1) + 6

    @property
    def feature_names(self) -> list[str]:
        return (
            [f"mfcc_{i}" for i in range(self.n_mfcc)]
            + [f"mfcc_delta_{i}" for i in range(self.n_mfcc)]
            + [f"chroma_{i}" for i in range(12)]
            + [f"logmel_{i}" for i in range(self.n_mels)]
            + [f"contrast_{i}" for i in range(self.contrast_bands + 1)]
            + [f"tonnetz_{i}" for i in range(6)]
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown feature config keys: {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "FeatureConfig":
        return cls.from_dict(json.loads(text))

    def hash(self) -> str:
        """Stable across processes and Python versions (unlike ``hash()``)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


def features_from_waveform(y: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Compute the (frames x n_features) matrix of a waveform at ``config.sample_rate``.

    NumPy only (:mod:`ser.frontends.dsp`; the tests compare every block with librosa), so the
    hand-made-feature models start as fast as the default: no numba to import or compile.
    The waveform is not windowed here: see :mod:`ser.frontends.windows`.
    """
    y = np.ascontiguousarray(y, dtype=np.float32)
    magnitude = magnitude_spectrogram(y, config.n_fft, config.hop_length)
    power = magnitude**2
    mel = _mel_bank(config) @ power
    log_mel = power_to_db(mel)  # absolute dB (reference 1.0, no top_db): keeps loudness
    mfcc = dct_matrix(config.n_mfcc, config.n_mels) @ log_mel
    mfcc_delta = delta(mfcc)
    chroma = chroma_filters(config.sample_rate, config.n_fft) @ power
    chroma = chroma / np.maximum(chroma.max(axis=0, keepdims=True), 1e-10)
    contrast = spectral_contrast(magnitude, config.sample_rate, config.n_fft,
                                 config.contrast_fmin, config.contrast_bands)
    matrix = np.concatenate([mfcc, mfcc_delta, chroma, log_mel, contrast, tonnetz(chroma)], axis=0)
    return np.ascontiguousarray(matrix.T, dtype=np.float32)


def _mel_bank(config: FeatureConfig) -> np.ndarray:
    return mel_filters(config.sample_rate, config.n_fft, config.n_mels, config.fmin,
                       config.fmax if config.fmax is not None else config.sample_rate / 2)


def log_mel_spectrogram(y: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """The log-mel block of the features (n_mels, frames) in dB, for display; NumPy only, so
    the app need not import librosa's feature modules."""
    return power_to_db(_mel_bank(config) @ power_spectrogram(y, config.n_fft, config.hop_length))
