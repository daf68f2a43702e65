"""Augmentation of training audio (waveform) and features (time/frequency masking).

Waveform variants are named ``"aug<N>"``; each is a fixed random draw per (clip, N), so an
augmented copy is reproducible and cacheable like the clean features. Only training clips are
ever augmented, after the split.
"""

from __future__ import annotations

import hashlib
import json
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


def augment_waveform(y: np.ndarray, sample_rate: int, variant: str, seed_key: str) -> np.ndarray:
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
    peak = np.abs(out).max()
    if peak > 1.0:  # keep within full scale, as a recording would be
        out = out / peak
    return out.astype(np.float32)


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
