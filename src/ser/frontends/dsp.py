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


def _frames(y: np.ndarray, n_fft: int, hop: int, pad_mode: str = "reflect") -> np.ndarray:
    """(1 + len // hop, n_fft) centred frames; the signal is padded by half a frame each side."""
    if len(y) <= n_fft // 2:  # reflect padding needs more samples than half a frame
        y = np.pad(y, (0, n_fft // 2 + 1 - len(y)))
    padded = np.pad(y, n_fft // 2, mode=pad_mode)
    return np.lib.stride_tricks.as_strided(
        padded, shape=(1 + len(y) // hop, n_fft), strides=(hop * padded.strides[0], padded.strides[0]))


def power_spectrogram(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT|^2, (1 + n_fft // 2, 1 + len // hop): periodic Hann, frames centred with reflect
    padding (Whisper's log-mel; librosa's ``stft`` before 0.10), in float32 arithmetic."""
    frames = _frames(np.asarray(y, dtype=np.float32), n_fft, hop)
    return (np.abs(np.fft.rfft(frames * _hann(n_fft), axis=1)) ** 2).T.astype(np.float32)


def magnitude_spectrogram(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT| as ``librosa.stft`` (0.10 and later) computes it for float32 input: frames
    centred with zero padding, the transform in float64, the result rounded to complex64 (faint
    bins of a loud frame sit at the round-off level, and the hand-made features' dB values
    keep them: their models learnt this order)."""
    frames = _frames(np.asarray(y, dtype=np.float32), n_fft, hop, pad_mode="constant")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann, float64
    spectrum = np.fft.rfft(frames * window, axis=1).astype(np.complex64)
    return np.abs(spectrum).T


def power_to_db(power: np.ndarray, floor: float = 1e-10) -> np.ndarray:
    return (10.0 * np.log10(np.maximum(power, floor))).astype(np.float32)


# --- the hand-made features' building blocks (librosa's definitions, NumPy only) ------------


@lru_cache(maxsize=8)
def chroma_filters(sample_rate: int, n_fft: int, n_chroma: int = 12, ctroct: float = 5.0,
                   octwidth: float = 2.0) -> np.ndarray:
    """(n_chroma, 1 + n_fft // 2) STFT-bin-to-pitch-class weights with tuning 0, as
    ``librosa.filters.chroma`` builds them: a Gaussian bump per pitch class around each bin's
    position in octaves (width = the bin's spacing), columns scaled to unit L2 norm, a Gaussian
    emphasis centred on octave ``ctroct`` (about 500 Hz), rows starting at C."""
    freqs = np.linspace(0, sample_rate, n_fft, endpoint=False)[1:]
    bins = n_chroma * np.log2(freqs / (440.0 / 16))  # position in pitch classes above C0-ish
    bins = np.concatenate(([bins[0] - 1.5 * n_chroma], bins))  # DC: far below everything
    widths = np.concatenate((np.maximum(bins[1:] - bins[:-1], 1.0), [1.0]))
    distance = bins[None, :] - np.arange(n_chroma, dtype=np.float64)[:, None]
    half = np.round(n_chroma / 2)
    distance = np.remainder(distance + half + 10 * n_chroma, n_chroma) - half  # wrap to ±half
    weights = np.exp(-0.5 * (2 * distance / widths[None, :]) ** 2)
    norms = np.sqrt(np.sum(weights**2, axis=0, keepdims=True))
    weights = weights / np.where(norms < np.finfo(np.float64).tiny, 1.0, norms)
    weights *= np.exp(-0.5 * ((bins / n_chroma - ctroct) / octwidth) ** 2)[None, :]
    weights = np.roll(weights, -3 * (n_chroma // 12), axis=0)  # start at C, not A
    return np.ascontiguousarray(weights[:, : 1 + n_fft // 2], dtype=np.float32)


@lru_cache(maxsize=8)
def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II as a (n_out, n_in) matrix: MFCC = matrix @ log-mel (librosa's
    ``mfcc``: type 2, norm "ortho", no liftering)."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    basis[0] /= np.sqrt(2.0)
    return basis.astype(np.float32)


def delta(x: np.ndarray, width: int = 9) -> np.ndarray:
    """First derivative along the last axis by a local least-squares line over ``width`` frames,
    edges extended with the nearest value (``librosa.feature.delta(x, mode="nearest")``, a
    Savitzky-Golay filter of order 1)."""
    half = width // 2
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(half, half)], mode="edge")
    n = x.shape[-1]
    out = np.zeros(x.shape, np.float64)
    for k in range(1, half + 1):
        out += k * (padded[..., half + k : half + k + n] - padded[..., half - k : half - k + n])
    return (out / (2 * sum(k * k for k in range(1, half + 1)))).astype(x.dtype)


def spectral_contrast(magnitude: np.ndarray, sample_rate: int, n_fft: int, fmin: float,
                      n_bands: int, quantile: float = 0.02) -> np.ndarray:
    """(n_bands + 1, frames) peak-to-valley level in dB per octave band (the band below
    ``fmin``, then octaves up; the last reaches Nyquist): mean of the top and bottom
    ``quantile`` of each band's magnitudes, as ``librosa.feature.spectral_contrast`` with its
    defaults (each of peak and valley in dB, floored 80 dB below its own maximum)."""
    freqs = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
    edges = np.zeros(n_bands + 2)
    edges[1:] = fmin * 2.0 ** np.arange(n_bands + 1)
    frames = magnitude.shape[-1]
    valley = np.zeros((n_bands + 1, frames), magnitude.dtype)
    peak = np.zeros_like(valley)
    for k, (low, high) in enumerate(zip(edges[:-1], edges[1:])):
        band = (freqs >= low) & (freqs <= high)
        idx = np.flatnonzero(band)
        if k > 0:
            band[idx[0] - 1] = True  # the bin just below the band belongs to it too
        if k == n_bands:
            band[idx[-1] + 1 :] = True
        sub = magnitude[band]
        if k < n_bands:
            sub = sub[:-1]
        count = max(int(np.rint(quantile * band.sum())), 1)
        ordered = np.sort(sub, axis=0)
        valley[k] = ordered[:count].mean(axis=0)
        peak[k] = ordered[-count:].mean(axis=0)
    return _db_top80(peak) - _db_top80(valley)


def _db_top80(power: np.ndarray) -> np.ndarray:
    db = power_to_db(power)
    return np.maximum(db, db.max() - 80.0)


@lru_cache(maxsize=2)
def _tonnetz_basis(n_chroma: int = 12) -> np.ndarray:
    steps = np.linspace(0, 12, num=n_chroma, endpoint=False)
    angles = np.multiply.outer(np.array([7 / 6, 7 / 6, 3 / 2, 3 / 2, 2 / 3, 2 / 3]), steps)
    angles[::2] -= 0.5  # sine rows: cos(pi (x - 1/2))
    radii = np.array([1, 1, 1, 1, 0.5, 0.5])[:, None]  # fifths, minor and major thirds
    return radii * np.cos(np.pi * angles)


def tonnetz(chroma: np.ndarray) -> np.ndarray:
    """(6, frames) tonal centroids of a chroma matrix (``librosa.feature.tonnetz(chroma=…)``):
    each frame's chroma scaled to sum 1, projected on the circles of fifths and of minor and
    major thirds."""
    totals = np.abs(chroma).sum(axis=0, keepdims=True)
    scaled = chroma / np.where(totals < np.finfo(chroma.dtype).tiny, 1.0, totals)
    return (_tonnetz_basis(chroma.shape[0]) @ scaled).astype(chroma.dtype)
