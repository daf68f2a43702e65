from __future__ import annotations

import librosa
import numpy as np
import pytest

from ser.features import FeatureConfig, clip_features, features_from_waveform
from ser.windows import fit_window

from .conftest import tone


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
