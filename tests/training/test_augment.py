"""Recording conditions (``ser.training.augment``): what each does to a signal, and that copies are
reproducible per clip and variant while training copies never repeat the benchmark's draw."""

import numpy as np
import pytest

from ser.training import augment
from tests.conftest import speech

SR = 16_000


def test_each_benchmark_condition_keeps_a_usable_signal():
    y = speech()
    rng = np.random.default_rng(0)
    for name in augment.BENCHMARK_CONDITIONS:
        out = augment.corrupt(y, SR, name, rng)
        assert out.dtype == np.float32 and np.isfinite(out).all(), name
        assert np.abs(out).max() <= 1.0 + 1e-6, name
        if name.startswith("excerpt"):
            assert 0.5 * SR <= len(out) <= 1.5 * SR
            assert np.sqrt(np.mean(out**2)) > 0.3 * np.sqrt(np.mean(y**2))  # speech, not a pause
        else:
            assert len(out) == len(y), name
            assert not np.allclose(out, y), name


def test_noise_is_added_at_the_asked_snr():
    y = speech()
    noise = augment.coloured_noise(len(y), 1, np.random.default_rng(1))
    out = augment.at_snr(y, noise, 10.0)
    snr = 10 * np.log10(np.mean(y**2) / np.mean((out - y) ** 2))
    assert snr == pytest.approx(10.0, abs=0.01)


def test_noise_colours_have_their_slopes():
    rng = np.random.default_rng(2)
    f = np.fft.rfftfreq(SR * 4, 1 / SR)
    low, high = (f > 100) & (f < 200), (f > 3200) & (f < 6400)
    for exponent, expected_db in ((0, 0.0), (1, 10 * np.log10(32)), (2, 20 * np.log10(32))):
        p = np.abs(np.fft.rfft(augment.coloured_noise(SR * 4, exponent, rng))) ** 2
        assert 10 * np.log10(p[low].mean() / p[high].mean()) == pytest.approx(expected_db, abs=1.5)


def test_telephone_removes_the_upper_band_and_a_room_smears_time():
    rng = np.random.default_rng(3)
    y = speech()
    f = np.fft.rfftfreq(len(y), 1 / SR)
    phone = np.abs(np.fft.rfft(augment.telephone(y))) ** 2
    assert phone[f > 4200].sum() < 1e-3 * phone.sum()
    click = np.zeros(SR, np.float32)
    click[100] = 1.0
    tail = augment.room(click, 0.8, rng)
    assert np.abs(tail[100 + SR // 2 :]).max() > 1e-3  # still ringing half a second later
    assert np.abs(augment.room(click, 0.3, rng)[100 + SR // 2 :]).max() < 1e-2 * np.abs(tail).max()


def test_copies_are_reproducible_per_clip_and_variant():
    y = speech()
    a = augment.augment_waveform(y, SR, "bench", seed_key="clip-a")
    assert np.array_equal(a, augment.augment_waveform(y, SR, "bench", seed_key="clip-a"))
    c1 = augment.augment_waveform(y, SR, "cond1", seed_key="clip-a")
    assert np.array_equal(c1, augment.augment_waveform(y, SR, "cond1", seed_key="clip-a"))
    assert not np.array_equal(c1, augment.augment_waveform(y, SR, "cond2", seed_key="clip-a"))
    # The held-out copy is the named benchmark condition, drawn uniformly over clips.
    names = [augment.benchmark_condition(f"clip-{i}") for i in range(2200)]
    counts = np.array([names.count(n) for n in augment.BENCHMARK_CONDITIONS])
    assert counts.min() > 140 and counts.max() < 260
    assert augment.augmentation_key("cond1") == augment.augmentation_key("bench") == augment.CONDITIONS_KEY
    assert augment.augmentation_key("aug1") == augment.AUGMENTATION_KEY != augment.CONDITIONS_KEY


def test_every_training_family_runs():
    y = speech()
    for family, (low, high) in augment.TRAINING_CONDITIONS.items():
        out = augment.apply_condition(y, SR, family, (low + high) / 2, np.random.default_rng(4))
        assert out.dtype == np.float32 and np.isfinite(out).all() and len(out) > 0.4 * SR, family
