from __future__ import annotations

import pytest

import json
from importlib.resources import files

from ser.interfaces.cli import main


def test_features_command(capsys):
    from importlib.resources import files

    example = files("ser") / "examples" / "speech_example.wav"
    assert main(["features", str(example), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["shape"] == [151, 233] and out["windows"] == 1
    assert set(out["groups"]) == {"mfcc", "mfcc_delta", "chroma", "logmel", "contrast", "tonnetz"}
    assert main(["features", str(example), "--windows"]) == 0
    assert "window(s) x 151 frames x 233 features" in capsys.readouterr().out


def test_features_bad_input_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_text("hello")
    assert main(["features", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ser: error:") and "bad.wav" in err[0]
    assert main(["features", str(tmp_path / "missing.wav")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_datasets_scan(tmp_path, capsys):
    for name in ("Actor_01/03-01-05-01-01-01-01.wav", "Actor_02/03-01-02-01-01-01-02.wav",
                 "wav/10a04Lc.wav", "other/readme.wav"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    assert main(["datasets", "scan", str(tmp_path), "--json", "--speakers"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["corpora"]["ravdess"] == {"files": 2, "speakers": 2, "classes": {"angry": 1, "calm": 1}}
    assert out["skipped"] == {"emodb label 'boredom' has no project class": 1,
                              "name follows no known corpus naming": 1}
    assert main(["datasets", "scan", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "ravdess" in text and "skipped:" in text
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["datasets", "scan", str(empty)]) == 1
    assert main(["datasets", "scan", str(tmp_path / "nowhere")]) == 1


@pytest.mark.parametrize("model", ["default", "light", "reference"])
def test_ser_predict_imports_neither_torch_nor_numba(model):
    """The serving path (CLI parsing included) stays on NumPy, soundfile/PyAV and ONNX Runtime
    for every shipped model: the default's encoder runs on ONNX Runtime (no CTranslate2, no
    onnx package), the hand-made features on NumPy (no librosa, so no numba to compile)."""
    import subprocess
    import sys

    code = (
        "import sys; from ser.interfaces.cli import main; "
        "from importlib.resources import files; "
        f"rc = main(['predict', '--model', '{model}', str(files('ser') / 'examples' / 'speech_example.wav')]); "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numba', 'librosa', 'sklearn', 'ctranslate2', 'onnx')); "
        "assert rc == 0 and not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_music_and_whale_song_are_no_speech_in_the_cli(capsys):
    """Public-domain excerpts (tests/data/README.md) through `ser predict`."""
    import json
    from pathlib import Path

    data = Path(__file__).parents[1] / "data"
    files = [str(data / "music_brahms_hungarian_dance_5.ogg"), str(data / "humpback_whale_song.ogg")]
    assert main(["predict", *files, "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["emotion"] for r in rows] == ["no_speech", "no_speech"]


def test_without_the_weights_the_default_is_one_error_line_never_another_model(tmp_path):
    """Without the encoder weight packages `ser predict` (default model) and the Python API
    refuse in one line naming the fix, exit 1, print no result: another model never answers
    in the default's place."""
    import os
    import subprocess
    import sys

    setup = ("import sys; from ser.frontends import encoders; "
             "encoders.PART_PACKAGES = ('no_such_part1', 'no_such_part2'); "
             "from importlib.resources import files; "
             "clip = str(files('ser') / 'examples' / 'speech_example.wav'); ")
    env = {**os.environ, "SER_CACHE_DIR": str(tmp_path)}
    for argv in ("['predict', clip]", "['predict', clip, '--model', 'default', '--format', 'jsonl']"):
        code = setup + f"from ser.interfaces.cli import main; sys.exit(main({argv}))"
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        assert run.returncode == 1 and run.stdout == ""
        assert run.stderr.startswith("ser: error:") and "pip install ser" in run.stderr
        assert "--model light" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    code = setup + ("from ser import EmotionRecognizer\n"
                    "try:\n    EmotionRecognizer.load()\nexcept Exception as exc:\n"
                    "    print(type(exc).__name__)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert run.stdout.strip() == "EncoderUnavailableError", run.stderr


def test_every_result_names_its_model_and_version(capsys):
    import json

    from ser.serving.bundle import read_bundle, shipped_bundle_path

    clip = str(files("ser") / "examples" / "speech_example.wav")
    for model in ("light", "reference"):
        assert main(["predict", clip, "--model", model, "--format", "jsonl"]) == 0
        row = json.loads(capsys.readouterr().out)
        version = read_bundle(shipped_bundle_path(model)).version
        assert row["model"] == model and row["model_version"] == version and len(version) == 12
    assert main(["predict", clip, "--model", "light", "--format", "csv"]) == 0
    header, line = capsys.readouterr().out.splitlines()
    assert "model" in header.split(",") and "model_version" in header.split(",")
    assert ",light," in line


def test_predict_without_inputs_prints_its_usage(capsys):
    assert main(["predict"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ser predict") and "--from-list" in err


@pytest.mark.parametrize("argv,hidden,extra", [
    (["serve"], "fastapi", "api"),
    (["app"], "streamlit", "app"),
    (["evaluate", "light", "NO_DATA"], "matplotlib", "train"),
    (["tune", "NO_DATA", "--out", "OUT"], "optuna", "train"),
    (["train", "NO_DATA", "--out", "OUT"], "torch", "train"),
    (["cv", "NO_DATA", "--out", "OUT"], "torch", "train"),
    (["train", "NO_DATA", "--out", "OUT", "--augment", "1"], "audiomentations", "train"),
    (["datasets", "extract", "NO_DATA", "--frontend", "whisper-base", "--encoder-states", "3"],
     "onnx", "train"),
    (["predict", "NO_FILE", "--engine", "ray"], "ray", "ray"),
    (["predict", "NO_FILE", "--format", "parquet", "--output", "OUT"], "pyarrow", "ray"),
])
def test_a_missing_extra_is_one_line_before_any_work(argv, hidden, extra, monkeypatch, capsys,
                                                     tmp_path):
    """Each command checks its extra first (the data paths here do not even exist, and nothing
    is read): one line naming the extra and how to install it, exit status 1."""
    import sys

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, hidden, None)  # as if not installed: find_spec says None
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == (f"ser: error: ser {argv[0]} needs the {extra} extra: pip install 'ser[{extra}]' "
                   f"(missing: {hidden})\n")
    assert not (tmp_path / "OUT").exists()


def test_every_option_has_help_and_shows_its_default():
    import argparse

    from ser.interfaces.cli import all_parsers, build_parser

    parsers = all_parsers(build_parser())
    assert len(parsers) >= 12  # ser, predict, models, serve, app, train, ... datasets scan/extract
    for parser in parsers:
        for action in parser._actions:
            assert action.help, f"{parser.prog} {action.option_strings or action.dest}: no help"
    text = next(p for p in parsers if p.prog == "ser predict").format_help()
    assert "(default: table)" in text and "(default: 5.0)" in text
    assert "(default: None)" not in text and "(default: False)" not in text
    serve = next(p for p in parsers if p.prog == "ser serve").format_help()
    assert "TCP port to listen on (default: 8000)" in " ".join(serve.split())
    assert isinstance(parsers[0], argparse.ArgumentParser)


def test_non_audio_bytes_fail_in_one_line_each_without_decoder_chatter(tmp_path):
    """A PNG named .mp3 and random bytes that begin like an MPEG frame, named .flac: one error
    line each and the count, nothing from the decoders' own C code (a real process: its
    standard error is the file descriptor libraries write to)."""
    import subprocess
    import sys

    png = tmp_path / "picture.mp3"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 80)
    noise = tmp_path / "noise.flac"
    noise.write_bytes(b"\xff\xe4\x22\x79" + bytes(reversed(range(256))) * 190)
    run = subprocess.run([sys.executable, "-m", "ser", "predict", str(png),
                          str(noise), "--model", "light"], capture_output=True, text=True)
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 3, run.stderr
    assert lines[0].startswith(f"ser: error: {png}: ")
    assert lines[1] == f"ser: error: {noise}: not a recognised audio file"
    assert lines[2] == "ser: 2 of 2 files failed"


def test_predict_speakers_file_answers_each_speakers_files_together(corpora, tmp_path, capsys):
    import json

    folder = corpora / "ravdess" / "Actor_06"
    clips = [str(folder / f"03-01-{e:02d}-02-{s:02d}-01-06.flac") for s in (1, 2) for e in range(2, 9)]
    other = str(corpora / "ravdess" / "Actor_07" / "03-01-03-02-01-01-07.flac")
    table = tmp_path / "speakers.csv"
    table.write_text("path,speaker,note\n" + "".join(f"{c},actor6,x\n" for c in clips)
                     + "elsewhere.wav,nobody,\n")
    assert main(["predict", *clips, other, "--speakers", str(table), "--format", "jsonl"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in rows] == [*clips, other]
    spoken = [r for r in rows[:-1] if r["emotion"] != "no_speech"]  # one clip may be refused
    assert len(spoken) >= 10 and len({r["emotion"] for r in spoken}) >= 4  # spread: adapted
    assert all(r["adapted"] and r["adapted_utterances"] == len(spoken) for r in spoken)
    assert rows[-1]["adapted"] is False and rows[-1]["adapted_utterances"] == 0
    assert "1 of the 15 paths" in err and "not among the inputs" in err
    # Without the file, each clip is answered alone.
    assert main(["predict", *clips[:2], "--format", "jsonl"]) == 0
    assert not any(json.loads(line)["adapted"] for line in capsys.readouterr().out.splitlines())
    # A file without the columns, and Ray, are one line each.
    bad = tmp_path / "bad.csv"
    bad.write_text("file,who\na.wav,x\n")
    assert main(["predict", *clips[:1], "--speakers", str(bad)]) == 1
    assert "needs the columns path and speaker" in capsys.readouterr().err
    from ser.common import ConfigError
    from ser.serving import batch

    with pytest.raises(ConfigError, match="local engine"):
        batch.run(clips[:1], engine="ray", speakers={clips[0]: "actor6"})


def test_no_adapt_answers_every_utterance_on_its_own(corpora, tmp_path, capsys):
    import json

    import numpy as np
    import soundfile as sf

    from ser.audio import decode

    folder = corpora / "ravdess" / "Actor_09"
    clips = [folder / f"03-01-{e:02d}-02-{s:02d}-01-09.flac" for s in (1, 2) for e in range(2, 9)]
    gap = np.zeros(16_000, np.float32)
    recording = tmp_path / "talk.flac"
    sf.write(recording, np.concatenate([x for c in clips for x in (decode(str(c), 16_000).samples, gap)]), 16_000)
    answers = {}
    for extra in ([], ["--no-adapt"]):
        assert main(["predict", str(recording), "--format", "jsonl", *extra]) == 0
        answers[bool(extra)] = json.loads(capsys.readouterr().out)
    assert answers[False]["adapted"] is True and answers[False]["adapted_utterances"] >= 10
    assert answers[True]["adapted"] is False and answers[True]["adapted_utterances"] == 0
    assert answers[True]["segments"] != answers[False]["segments"] or (
        answers[True]["probabilities"] != answers[False]["probabilities"])
    table = tmp_path / "speakers.csv"
    table.write_text(f"path,speaker\n{recording},me\n")
    assert main(["predict", str(recording), "--speakers", str(table), "--no-adapt"]) == 1
    assert "exclude each other" in capsys.readouterr().err
