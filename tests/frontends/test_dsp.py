"""The NumPy serving-path DSP against librosa (an independent implementation)."""
from __future__ import annotations

import librosa
import numpy as np
import pytest

from ser.frontends.dsp import mel_filters, power_spectrogram
from ser.frontends.features import FeatureConfig, log_mel_spectrogram

from ..conftest import speech


@pytest.mark.parametrize("sr,n_fft,n_mels,fmin,fmax", [(16_000, 400, 80, 0.0, 8000.0),
                                                       (16_000, 1024, 128, 0.0, 8000.0),
                                                       (22_050, 2048, 64, 50.0, 9000.0)])
def test_mel_filters_match_librosa(sr, n_fft, n_mels, fmin, fmax):
    ours = mel_filters(sr, n_fft, n_mels, fmin, fmax)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    np.testing.assert_allclose(ours, ref, atol=1e-6, rtol=1e-4)


def test_power_spectrogram_and_display_mel_match_librosa():
    y = speech()
    ref = np.abs(librosa.stft(y, n_fft=1024, hop_length=320, window="hann")) ** 2
    ours = power_spectrogram(y, 1024, 320)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-4 * ref.max())
    config = FeatureConfig()
    expected = librosa.power_to_db(librosa.filters.mel(sr=16_000, n_fft=1024, n_mels=128) @ ref,
                                   ref=1.0, top_db=None)
    ours_db = log_mel_spectrogram(y, config)
    audible = expected > expected.max() - 80  # float32 rounding differs far below the display range
    np.testing.assert_allclose(ours_db[audible], expected[audible], atol=0.05)
