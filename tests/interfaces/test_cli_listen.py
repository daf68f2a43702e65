"""`ser listen`: a file replayed as a live stream gives predict's utterances, one line each;
without a microphone it says so in one line."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import soundfile as sf

from ser import EmotionRecognizer
from ser.interfaces.cli import main

from ..conftest import speech


def _recording(tmp_path):
    gap = np.zeros(16_000, np.float32)
    wav = tmp_path / "talk.wav"
    sf.write(wav, np.concatenate([gap, speech(0.9), gap, gap, speech(1.1, 0.8), gap, gap]), 16_000)
    return wav


def test_jsonl_has_every_event_and_predicts_utterances(tmp_path, capsys):
    wav = _recording(tmp_path)
    assert main(["listen", "--input", str(wav), "--no-realtime", "--format", "jsonl"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = EmotionRecognizer.load("default").predict(str(wav))
    utterances = [e for e in events if e["type"] == "utterance"]
    assert [(u["start_s"], u["end_s"], u["emotion"]) for u in utterances] == [
        (round(s.start_s, 3), round(s.end_s, 3), s.emotion) for s in expected.segments]
    assert {"speech_started", "speech_ended", "interim"} <= {e["type"] for e in events}
    assert events[-1]["type"] == "summary" and events[-1]["emotion"] == expected.emotion


def test_text_is_one_line_per_utterance_with_shares_then_the_summary(tmp_path, capsys):
    wav = _recording(tmp_path)
    started = time.perf_counter()
    assert main(["listen", "--input", str(wav)]) == 0  # at speaking pace
    took = time.perf_counter() - started
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(" s  " in line and "so far:" in line for line in lines[:2])
    assert lines[-1].startswith("summary: ") and "2 utterance(s)" in lines[-1]
    assert took >= sf.info(str(wav)).duration - 0.5  # replayed in real time, not at once


def test_without_a_microphone_it_is_one_line_and_exit_1():
    code = ("import sys; sys.modules['sounddevice'] = None; "  # as if the extra were missing
            "from ser.interfaces.cli import main; sys.exit(main(['listen']))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and "ser[live]" in run.stderr and "--input FILE" in run.stderr
    # With the library but no device (or no PortAudio): one line as well.
    run = subprocess.run([sys.executable, "-m", "ser", "listen"], capture_output=True, text=True)
    assert run.returncode == 1 and run.stderr.count("\n") == 1 and run.stderr.startswith("ser: error:")


def test_a_file_that_is_not_audio_is_one_line(tmp_path, capsys):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    assert main(["listen", "--input", str(bad)]) == 1
    assert "not a recognised audio file" in capsys.readouterr().err
