from __future__ import annotations

import librosa
import numpy as np
import pytest

from ser.frontends.features import FeatureConfig, features_from_waveform
from ser.frontends.windows import clip_features, fit_window

from ..conftest import tone


def test_shape_is_frames_by_233():
    config = FeatureConfig()
    x = clip_features(tone(2.0), config)
    assert x.shape == (config.n_frames, 233) == (151, 233)
    assert x.dtype == np.float32 and np.isfinite(x).all()
    assert len(config.feature_names) == config.n_features


def test_config_json_round_trip_and_stable_hash():
    config = FeatureConfig(anchor="start", hop_length=256)
    again = FeatureConfig.from_json(config.to_json())
    assert again == config and again.hash() == config.hash()
    assert FeatureConfig().hash() == FeatureConfig().hash()
    assert FeatureConfig(n_mels=64).hash() != FeatureConfig().hash()
    with pytest.raises(ValueError, match="unknown"):
        FeatureConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError):
        FeatureConfig(anchor="middle")


def test_shared_stft_matches_librosa_computed_separately():
    # The shared-STFT pipeline must give what librosa's own functions give from the waveform.
    config = FeatureConfig()
    rng = np.random.default_rng(0)
    y = (tone(3.0) + 0.01 * rng.standard_normal(48_000)).astype(np.float32)
    x = features_from_waveform(y, config)
    sr, n_fft, hop = config.sample_rate, config.n_fft, config.hop_length
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop, n_mels=128)
    log_mel = librosa.power_to_db(mel, ref=1.0, top_db=None)
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=40)
    chroma = librosa.feature.chroma_stft(y=y, sr=sr, n_fft=n_fft, hop_length=hop, tuning=0.0)
    contrast = librosa.feature.spectral_contrast(
        y=y, sr=sr, n_fft=n_fft, hop_length=hop, fmin=100.0, n_bands=6
    )
    np.testing.assert_allclose(x[:, :40], mfcc.T, rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(x[:, 80:92], chroma.T, atol=1e-4)
    np.testing.assert_allclose(x[:, 92:220], log_mel.T, atol=1e-2)
    np.testing.assert_allclose(x[:, 220:227], contrast.T, rtol=1e-3, atol=1e-2)
    tonnetz = librosa.feature.tonnetz(chroma=chroma)
    np.testing.assert_allclose(x[:, 227:], tonnetz.T, atol=1e-4)


def test_fit_window_start_pads_and_trims():
    config = FeatureConfig(anchor="start")
    short = np.ones(1000, np.float32)
    out = fit_window(short, config)
    assert len(out) == config.window_samples and out[:1000].all() and not out[1000:].any()
    long = np.arange(100_000, dtype=np.float32)
    np.testing.assert_array_equal(fit_window(long, config), long[: config.window_samples])


def test_fit_window_speech_skips_leading_silence():
    config = FeatureConfig(anchor="speech")
    speech = tone(1.0)
    y = np.concatenate([np.zeros(16_000, np.float32), speech, np.zeros(8_000, np.float32)])
    out = fit_window(y, config)
    assert len(out) == config.window_samples
    # the speech sits in the middle of the window, not after a second of silence
    energy = np.abs(out) > 1e-3
    centre = np.flatnonzero(energy).mean() / len(out)
    assert 0.4 < centre < 0.6


def _librosa_features(y: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """The pipeline as it was written with librosa (what the shipped light and reference models
    were trained on): the independent implementation the NumPy one must reproduce."""
    magnitude = np.abs(librosa.stft(y, n_fft=config.n_fft, hop_length=config.hop_length,
                                    window="hann")).astype(np.float32)
    power = magnitude**2
    mel = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels,
                              fmin=config.fmin, fmax=config.fmax).astype(np.float32) @ power
    log_mel = librosa.power_to_db(mel, ref=1.0, top_db=None)
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=config.n_mfcc)
    chroma = librosa.filters.chroma(sr=config.sample_rate, n_fft=config.n_fft,
                                    tuning=0.0).astype(np.float32) @ power
    chroma = chroma / np.maximum(chroma.max(axis=0, keepdims=True), 1e-10)
    contrast = librosa.feature.spectral_contrast(S=magnitude, sr=config.sample_rate,
                                                 n_fft=config.n_fft, fmin=config.contrast_fmin,
                                                 n_bands=config.contrast_bands)
    blocks = [mfcc, librosa.feature.delta(mfcc, mode="nearest"), chroma, log_mel, contrast,
              librosa.feature.tonnetz(chroma=chroma)]
    return np.concatenate(blocks, axis=0).T.astype(np.float32)


@pytest.mark.parametrize("case", ["speech_after_silence", "noise", "silence", "short"])
def test_numpy_features_equal_the_librosa_pipeline(case):
    """Every block, including frames at the edges (zero padding) and faint bins of a loud frame
    (float32 round-off, which the dB values keep)."""
    from ..conftest import speech

    config = FeatureConfig()
    rng = np.random.default_rng(1)
    y = {"speech_after_silence": np.concatenate([np.zeros(8000, np.float32), speech()])[:48_000],
         "noise": 0.1 * rng.standard_normal(48_000),
         "silence": np.zeros(48_000),
         "short": speech()[:4000]}[case].astype(np.float32)
    ours, ref = features_from_waveform(y, config), _librosa_features(y, config)
    assert ours.shape == ref.shape
    scale = np.abs(ref).max(axis=0)  # per feature: MFCC 0 is about -1,100, chroma at most 1
    assert (np.abs(ours - ref) <= 1e-4 * scale + 1e-3).all()


@pytest.mark.parametrize("sr,n_fft", [(16_000, 1024), (22_050, 2048), (8_000, 256)])
def test_chroma_filters_and_contrast_match_librosa(sr, n_fft):
    from ser.frontends.dsp import chroma_filters, delta, spectral_contrast

    np.testing.assert_allclose(chroma_filters(sr, n_fft),
                               librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=0.0), atol=1e-6)
    magnitude = np.abs(np.random.default_rng(2).standard_normal((1 + n_fft // 2, 40))).astype(np.float32)
    np.testing.assert_allclose(
        spectral_contrast(magnitude, sr, n_fft, 100.0, 4),
        librosa.feature.spectral_contrast(S=magnitude, sr=sr, n_fft=n_fft, fmin=100.0, n_bands=4),
        rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(delta(magnitude), librosa.feature.delta(magnitude, mode="nearest"),
                               atol=1e-5)
