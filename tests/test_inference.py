"""Python API and the `ser predict` contract, on a tiny trained bundle."""
from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from ser import EMOTIONS, EmotionRecognizer
from ser.audio import AudioTooShortError, NotAudioError
from ser.cli import main
from ser.inference import NO_SPEECH

from .conftest import tone

CONTRACT_KEYS = {"path", "emotion", "confidence", "probabilities", "duration_s", "segments"}


@pytest.fixture(scope="module")
def recognizer(tiny_bundle):
    return EmotionRecognizer.load(tiny_bundle[1])


def test_predict_path_bytes_and_array(recognizer, tmp_path):
    y = tone(2.0)
    path = tmp_path / "a.wav"
    sf.write(path, y, 16_000)
    p = recognizer.predict(path)
    assert p.emotion in EMOTIONS and p.has_speech
    assert set(p.probabilities) == set(EMOTIONS)
    assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert p.confidence == pytest.approx(max(p.probabilities.values()))
    assert p.duration_s == pytest.approx(2.0)
    assert len(p.segments) == 1 and p.segments[0].emotion == p.emotion
    from_bytes = recognizer.predict(path.read_bytes())
    from_array = recognizer.predict(y, sample_rate=16_000)
    for other in (from_bytes, from_array):
        for k in EMOTIONS:
            assert other.probabilities[k] == pytest.approx(p.probabilities[k], abs=1e-4)
    with pytest.raises(TypeError):
        recognizer.predict(y)


def test_long_recording_timeline_skips_silence(recognizer):
    sr = 16_000
    y = np.concatenate([tone(3.0), np.zeros(6 * sr, np.float32), tone(3.0, freq=300)])
    p = recognizer.predict(y, sample_rate=sr, hop_s=1.5)
    assert p.duration_s == pytest.approx(12.0)
    starts = [s.start_s for s in p.segments]
    assert starts == sorted(starts) and starts[0] == 0.0 and starts[1] == 1.5
    silent = [s for s in p.segments if s.emotion == NO_SPEECH]
    speech = [s for s in p.segments if s.emotion != NO_SPEECH]
    assert silent and speech
    # windows entirely inside the silent stretch (3 s .. 9 s) are the silent ones
    assert all(3.0 <= s.start_s and s.end_s <= 9.0 for s in silent)
    probs = np.mean([list(s.probabilities.values()) for s in speech], axis=0)
    assert p.confidence == pytest.approx(probs.max(), abs=1e-5)


def test_silence_gives_no_speech_not_a_guess(recognizer):
    p = recognizer.predict(np.zeros(16_000 * 2, np.float32), sample_rate=16_000)
    assert p.emotion == NO_SPEECH and not p.has_speech and p.confidence == 0.0
    assert set(p.probabilities.values()) == {0.0}
    long = recognizer.predict(np.zeros(16_000 * 10, np.float32), sample_rate=16_000)
    assert long.emotion == NO_SPEECH and all(s.emotion == NO_SPEECH for s in long.segments)


def test_predict_many_keeps_order_and_errors(recognizer, tmp_path):
    paths = []
    for i in range(10):
        path = tmp_path / f"{i}.wav"
        sf.write(path, tone(1.0, freq=150 + 30 * i), 16_000)
        paths.append(path)
    bad = tmp_path / "bad.wav"
    bad.write_text("nope")
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(100, np.float32), 16_000)
    sources = paths[:5] + [bad] + paths[5:] + [short]
    results = list(recognizer.predict_many(sources, workers=2))
    assert len(results) == len(sources)
    assert isinstance(results[5], NotAudioError) and isinstance(results[-1], AudioTooShortError)
    single = recognizer.predict(paths[7])
    assert results[8].emotion == single.emotion
    assert results[8].probabilities == pytest.approx(single.probabilities, abs=1e-5)


def test_cli_jsonl_contract(tiny_bundle, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    sf.write(folder / "a.wav", tone(1.5), 16_000)
    sf.write(folder / "b.flac", tone(1.5, freq=330), 16_000)
    (folder / "c.wav").write_bytes(b"garbage" * 50)
    code = main(["predict", str(folder), "--model", str(tiny_bundle[1]), "--format", "jsonl"])
    assert code == 1  # one file failed
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["path"].rsplit("/", 1)[1] for line in lines] == ["a.wav", "b.flac", "c.wav"]
    for line in lines[:2]:
        assert set(line) == CONTRACT_KEYS
        assert isinstance(line["emotion"], str) and isinstance(line["confidence"], float)
        assert set(line["probabilities"]) == set(EMOTIONS)
        assert isinstance(line["duration_s"], float)
        for seg in line["segments"]:
            assert set(seg) == {"start_s", "end_s", "emotion", "confidence"}
    assert set(lines[2]) == {"path", "error"} and "not a recognised audio file" in lines[2]["error"]

    out = tmp_path / "out.csv"
    assert main(["predict", str(folder / "a.wav"), "--model", str(tiny_bundle[1]),
                 "--format", "csv", "--output", str(out)]) == 0
    header = out.read_text().splitlines()[0].split(",")
    assert header[:4] == ["path", "emotion", "confidence", "duration_s"]
    assert main(["predict", str(folder / "a.wav"), "--model", str(tmp_path / "nomodel")]) == 1
    assert "model bundle folder not found" in capsys.readouterr().err


def test_inference_does_not_import_torch(tiny_bundle, tmp_path):
    sf.write(tmp_path / "a.wav", tone(1.0), 16_000)
    code = (
        "import sys; from ser import EmotionRecognizer; "
        f"EmotionRecognizer.load({str(tiny_bundle[1])!r}).predict({str(tmp_path / 'a.wav')!r}); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_shipped_default_model_predicts_the_example():
    from importlib.resources import files

    rec = EmotionRecognizer.load()
    assert rec.bundle.frontend == "whisper-base"
    p = rec.predict(str(files("ser") / "examples" / "speech_example.wav"))
    assert p.emotion in EMOTIONS and 0.0 < p.confidence <= 1.0
    long = rec.predict(str(files("ser") / "examples" / "long_example.wav"))
    assert len(long.segments) > 1
    assert any(s.emotion == NO_SPEECH for s in long.segments)  # the 2-s pause in the middle


def test_default_falls_back_without_the_encoder(monkeypatch):
    from ser import encoders

    monkeypatch.setattr(encoders, "PART_PACKAGES", ("no_such_part1", "no_such_part2"))
    monkeypatch.setenv("SER_CACHE_DIR", "/nonexistent-ser-cache")
    with pytest.warns(UserWarning, match="hand-made-feature model"):
        rec = EmotionRecognizer.load()
    assert rec.bundle.frontend == "handcrafted"
    assert rec.predict(tone(2.0), sample_rate=16_000).emotion in EMOTIONS


def test_shipped_models_by_name(tmp_path):
    from ser.bundle import BundleError, resolve_model, shipped_bundle_path

    assert resolve_model("light") == shipped_bundle_path("light")
    assert resolve_model(None).name == "default"
    folder = tmp_path / "reference"
    folder.mkdir()
    assert resolve_model(str(folder)) == folder  # an existing folder wins over a name
    with pytest.raises(BundleError, match="ser models"):
        resolve_model("no-such-model")
    rec = EmotionRecognizer.load("light")
    assert rec.bundle.root == shipped_bundle_path("light") and rec.bundle.frontend == "handcrafted"


def test_ser_models_lists_every_shipped_bundle(capsys):
    import json as _json

    from ser.bundle import SHIPPED_MODELS, shipped_bundle_path
    from ser.cli import main

    assert main(["models", "--json"]) == 0
    rows = _json.loads(capsys.readouterr().out)
    shipped = [n for n in SHIPPED_MODELS if shipped_bundle_path(n).is_dir()]
    assert [r["name"] for r in rows] == shipped and "light" in shipped
    for r in rows:
        assert r["size_mb"] > 0 and r["parameters"] > 0 and r["frontend"] in ("handcrafted", "whisper-base")
