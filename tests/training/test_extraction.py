from __future__ import annotations

import numpy as np
import soundfile as sf

from ser.training.datasets import Record
from ser.common import NO_SPEECH
from ser.training.extraction import extract
from ser.frontends.features import FeatureConfig

from ..conftest import speech, tone


def _records(tmp_path, n=6):
    records = []
    for i in range(n):
        path = tmp_path / f"clip{i}.wav"
        sf.write(path, speech(0.8 + 0.02 * i), 16_000)
        records.append(Record(str(path), "test", "en", f"test:{i % 2}", None, "x", "angry"))
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16_000, np.float32), 16_000)
    records.append(Record(str(silent), "test", "en", "test:0", None, "x", "sad"))
    hum = tmp_path / "hum.wav"  # loud, but not speech: the VAD gate refuses it too
    sf.write(hum, tone(2.0, freq=100.0), 16_000)
    records.append(Record(str(hum), "test", "en", "test:0", None, "x", "sad"))
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio at all" * 10)
    records.append(Record(str(broken), "test", "en", "test:1", None, "x", "sad"))
    return records


def test_cache_hits_and_config_change(tmp_path):
    records = _records(tmp_path)
    config = FeatureConfig()
    cache = tmp_path / "cache"
    first = extract(records, config, cache_dir=cache, workers=1, progress=False)
    assert first.features.shape == (6, config.n_frames, config.n_features)
    assert first.cache_hits == 0
    reasons = {r.path.rsplit("/", 1)[1]: why for r, why in first.failures}
    assert reasons["silent.wav"] == NO_SPEECH and reasons["hum.wav"] == NO_SPEECH
    assert "not a recognised audio file" in reasons["broken.wav"]

    second = extract(records, config, cache_dir=cache, workers=1, progress=False)
    assert second.cache_hits == 8  # six clips, the silent one and the hum; the broken file is retried
    np.testing.assert_array_equal(second.features, first.features)
    assert [r.path for r in second.records] == [r.path for r in first.records]

    changed = extract(records, FeatureConfig(anchor="start"), cache_dir=cache, workers=1, progress=False)
    assert changed.cache_hits == 0
    assert not np.array_equal(changed.features, first.features)


def test_parallel_matches_serial(tmp_path):
    records = _records(tmp_path, n=40)
    config = FeatureConfig()
    serial = extract(records, config, cache_dir=False, workers=1, progress=False)
    parallel = extract(records, config, cache_dir=False, workers=2, progress=False)
    np.testing.assert_allclose(parallel.features, serial.features, atol=1e-4)
    assert len(parallel.failures) == len(serial.failures) == 3
