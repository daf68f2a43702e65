"""NumPy-only signal processing for the serving path: STFT power, Slaney mel filter banks and
decibels. librosa computes the same (the tests compare), but importing its feature modules
pulls in numba and scipy.signal: about a second and 200 MB that prediction does not need.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

_LOG_STEP = np.log(6.4) / 27.0  # Slaney: mels are logarithmic above 1 kHz with this step


def hz_to_mel(f) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / _LOG_STEP,
                    3.0 * f / 200.0)


def mel_to_hz(m) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp(_LOG_STEP * (m - 15.0)), 200.0 * m / 3.0)


@lru_cache(maxsize=8)
def mel_filters(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) triangles on Slaney's mel scale, each of unit area (Slaney
    normalisation): ``librosa.filters.mel``'s defaults."""
    fft_freqs = np.linspace(0.0, sample_rate / 2, 1 + n_fft // 2)
    points = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(points)
    ramps = points[:, None] - fft_freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (points[2:] - points[:-2]))[:, None]
    return weights.astype(np.float32)


@lru_cache(maxsize=8)
def _hann(n: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)  # periodic


def power_spectrogram(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT|^2, (1 + n_fft // 2, 1 + len // hop): periodic Hann, frames centred with reflect
    padding (librosa's ``stft`` defaults)."""
    y = np.asarray(y, dtype=np.float32)
    if len(y) <= n_fft // 2:  # reflect padding needs more samples than half a frame
        y = np.pad(y, (0, n_fft // 2 + 1 - len(y)))
    padded = np.pad(y, n_fft // 2, mode="reflect")
    n_frames = 1 + len(y) // hop
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(n_frames, n_fft), strides=(hop * padded.strides[0], padded.strides[0]))
    return (np.abs(np.fft.rfft(frames * _hann(n_fft), axis=1)) ** 2).T.astype(np.float32)


def power_to_db(power: np.ndarray, floor: float = 1e-10) -> np.ndarray:
    return (10.0 * np.log10(np.maximum(power, floor))).astype(np.float32)
