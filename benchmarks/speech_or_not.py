"""Short words accepted, non-speech refused: the shared speech / non-speech recordings
(``../shared/vad``, README there) through ``EmotionRecognizer.predict`` as users get it.

Printed: of the 1,200 FSDD digits (6 speakers, trimmed to the word) how many fail as too short
and how many come back ``no_speech``; the same for the 30 Speech Commands digits and the 3
LibriSpeech excerpts; which of the 6 noise scenes, the 7 instrumental pieces, the 3 animals and
the song get an emotion (whole files, as a user uploads them); and which generated signals of
``benchmarks/vad.py`` (tones, hum, clicks, noise colours, chords, 0.3-4 s long) get one.

    python benchmarks/speech_or_not.py [--model default] [--vad ../shared/vad]
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from pathlib import Path

import numpy as np
from common import CORPORA, machine_baseline
from vad import generated

INSTRUMENTAL = ("waltz", "ragtime", "Hungarian", "Tchaikovsky", "Vibe_Ace", "Drum-bass", "trumpet")
ANIMALS = ("robin", "humpback", "pibble")


def verdict(rec, source, **kw) -> str:
    """"refused: too short", "no_speech", an error's class, or "emotion"."""
    from ser.audio import AudioError, AudioTooShortError

    try:
        result = rec.predict(source, **kw)
    except AudioTooShortError:
        return "too short"
    except AudioError as exc:
        return type(exc).__name__
    return "no_speech" if result.emotion == "no_speech" else "emotion"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--vad", type=Path, default=CORPORA.parent / "vad")
    ap.add_argument("--no-gate", action="store_true",
                    help="without the bundle's speech gate (and the second look at short input)")
    args = ap.parse_args()
    from ser import EmotionRecognizer

    print(machine_baseline())
    rec = EmotionRecognizer.load(args.model)
    if args.no_gate:
        rec.gate, rec.short_pad_s = None, 0.0
    rows = list(csv.DictReader(open(args.vad / "manifest.csv")))
    started = time.perf_counter()
    print(f"model {args.model} ({rec.identity['model_version']})"
          f"{', without its speech gate' if args.no_gate else ''}\n")
    print("| speech set | files | too short | no_speech | analysed |\n|---|---|---|---|---|")
    for folder in ("fsdd", "sc09", "librispeech"):
        files = [r for r in rows if r["path"].startswith(f"speech/{folder}/")]
        counts = Counter(verdict(rec, str(args.vad / r["path"])) for r in files)
        lost = counts["too short"] + counts["no_speech"]
        print(f"| {folder} | {len(files)} | {counts['too short']} | {counts['no_speech']} | "
              f"{counts['emotion']} ({100 * lost / len(files):.1f}% lost) |")
    print("\n| non-speech | files | get an emotion |\n|---|---|---|")
    groups = {
        "noise scenes": [r for r in rows if "speech-commands-noise" in r["path"]],
        "instrumental pieces": [r for r in rows if any(k in r["path"] for k in INSTRUMENTAL)],
        "animals": [r for r in rows if any(k in r["path"] for k in ANIMALS)],
        "song with vocals": [r for r in rows if "Fishin" in r["path"]],
    }
    for name, files in groups.items():
        got = [Path(r["path"]).stem[:28] for r in files
               if verdict(rec, str(args.vad / r["path"]), max_duration_s=None) == "emotion"]
        print(f"| {name} | {len(files)} | {len(got)}{': ' + ', '.join(got) if got else ''} |")
    signals = {}
    for seconds in (0.3, 0.5, 1.0, 4.0):
        signals.update({f"{k} ({seconds:g} s)": v for k, v in generated(seconds).items()})
    got = [k for k, y in signals.items() if verdict(rec, y, sample_rate=16_000) == "emotion"]
    print(f"| generated signals | {len(signals)} | {len(got)}{': ' + ', '.join(got) if got else ''} |")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
