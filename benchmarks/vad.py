"""Speech / non-speech decisions of the served path (Silero VAD gate), measured.

Everything goes through ``EmotionRecognizer.predict`` (the light model by default: the gate is
the same for every model), so the figures are what a user gets:

* speech refused: corpus clips (``--per-corpus`` per corpus, seed 0) that come back
  ``no_speech`` — clean, and mixed with white noise at 20/10/5/0 dB SNR (noise power relative
  to the clip's speech power, i.e. over its VAD-found speech);
* non-speech accepted: generated tones, chirps, white/pink/brown noise, clicks, mains hum,
  dithered silence, synthetic chords and a snare roll, plus any music files in ``--music``
  (e.g. the librosa example recordings), cut into 10-s excerpts — that get an emotion.

* ``--words``: short speech instead — TurEV-DB's single words (0.35-2.5 s) and 0.5-1.5-s
  excerpts cut from the speech of RAVDESS and CREMA-D clips, clean and at 10 dB SNR — refused,
  for each ``--threshold`` and ``--min-speech`` value given, next to the generated non-speech
  (and the ``--music`` excerpts) accepted.

    python benchmarks/vad.py [--corpora ../shared/corpora] [--music DIR] [--per-corpus 100]
    python benchmarks/vad.py --words [--threshold 0.5 0.4] [--min-speech 0.1 0.064] [--music DIR]

``--music``: any folder of recordings without speech; the figures in docs/performance.md used
the instrumental pieces, the whale song, the dog and the robin of librosa's example data
(https://github.com/librosa/data, ``audio/``: CC BY / CC BY-NC / public domain, each file's
``.txt`` names its licence), which the benchmark does not download.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
from common import CORPORA

SR = 16_000
def _reference_gate():
    """The gate that picks the excerpts and measures speech power: fixed, so that the sets stay
    the same whatever the served gate's settings."""
    from ser.audio import vad

    return vad.VadConfig(threshold=0.5, min_speech_s=0.1)


def generated(seconds: float = 4.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    n = len(t)

    def coloured(exponent: float) -> np.ndarray:  # 1/f^exponent power spectrum
        spectrum = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1 / SR)
        spectrum[1:] /= f[1:] ** (exponent / 2)
        y = np.fft.irfft(spectrum, n)
        return 0.2 * y / np.abs(y).max()

    def chords() -> np.ndarray:
        out = np.zeros(n)
        for k, root in enumerate([220.0, 174.6, 196.0, 261.6]):
            seg = slice(k * n // 4, (k + 1) * n // 4)
            for ratio in (1.0, 1.26, 1.5):
                for h in range(1, 6):
                    out[seg] += np.sin(2 * np.pi * root * ratio * h * t[seg]) / h ** 1.5
        return 0.3 * out / np.abs(out).max()

    def snare_roll(rate_hz: float = 12.0) -> np.ndarray:
        out = rng.standard_normal(n) * 0.0
        hit = np.exp(-np.arange(int(0.06 * SR)) / (0.012 * SR))
        for start in np.arange(0, seconds, 1 / rate_hz):
            i = int(start * SR)
            seg = out[i : i + len(hit)]
            seg += 0.6 * hit[: len(seg)] * rng.standard_normal(len(seg))
        return out

    signals = {f"tone {f:g} Hz": 0.5 * np.sin(2 * np.pi * f * t) for f in (100, 250, 440, 1000, 4000)}
    for f in (110, 220):
        signals[f"harmonic tone {f} Hz"] = 0.3 * sum(np.sin(2 * np.pi * f * k * t) / k
                                                    for k in range(1, 6)) / 2.3
    signals["chirp 100-4000 Hz"] = 0.5 * np.sin(2 * np.pi * (100 * t + (3900 / (2 * seconds)) * t**2))
    for level in (0.02, 0.1, 0.3):
        signals[f"white noise {level}"] = level * rng.standard_normal(n)
    signals["pink noise"] = coloured(1.0)
    signals["brown noise"] = coloured(2.0)
    for per_s in (1, 4, 20):
        signals[f"clicks {per_s}/s"] = np.where(np.arange(n) % (SR // per_s) < 16, 0.8, 0.0)
    for mains in (50, 60):
        signals[f"hum {mains} Hz"] = 0.3 * sum(np.sin(2 * np.pi * mains * k * t) / k for k in range(1, 8))
    signals["silence with dither"] = rng.integers(-1, 2, n) / 32768.0
    signals["synthetic chords"] = chords()
    signals["snare roll"] = snare_roll()
    return {k: v.astype(np.float32) for k, v in signals.items()}


def music_excerpts(folder: Path, seconds: float = 10.0) -> dict[str, np.ndarray]:
    from ser.audio import decode

    out = {}
    for path in sorted(folder.glob("*.ogg")) + sorted(folder.glob("*.wav")) + sorted(folder.glob("*.mp3")):
        if ".hq." in path.name:
            continue
        y = decode(path, SR, max_duration_s=None).samples
        step = int(seconds * SR)
        for k, start in enumerate(range(0, max(1, len(y) - step // 2), step)):
            if k >= 3:
                break
            out[f"{path.stem[:40]} @{start // SR}s"] = y[start : start + step]
    return out


def corpus_clips(corpora: Path, per_corpus: int) -> list[tuple[str, np.ndarray]]:
    from ser.audio import decode
    from ser.training.datasets import scan

    records = scan(corpora).records
    rng = np.random.default_rng(0)
    clips = []
    for corpus in sorted({r.corpus for r in records}):
        pool = [r for r in records if r.corpus == corpus]
        for i in rng.choice(len(pool), size=min(per_corpus, len(pool)), replace=False):
            clips.append((corpus, decode(pool[i].path, SR).samples))
    return clips


def with_noise(y: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    from ser.audio import vad

    segments = vad.speech_segments(y, _reference_gate()) or [(0, len(y))]
    speech_power = np.mean(np.concatenate([y[s:e] for s, e in segments]) ** 2)
    noise = rng.standard_normal(len(y)) * np.sqrt(speech_power / 10 ** (snr_db / 10))
    return (y + noise).astype(np.float32)


def short_speech(corpora: Path) -> dict[str, list[np.ndarray]]:
    """Single words (TurEV-DB) and word-length excerpts of corpus speech (seed 0)."""
    from ser.audio import vad
    from ser.audio import decode
    from ser.training.datasets import scan

    rng = np.random.default_rng(0)
    words = [decode(r.path, SR, min_duration_s=None).samples
             for r in scan(corpora / "turev-db").records]
    excerpts = []
    for r in scan(corpora / "ravdess").records[::10] + scan(corpora / "crema-d").records[::50]:
        y = decode(r.path, SR).samples
        segments = vad.speech_segments(y, _reference_gate())
        length = int(rng.uniform(0.5, 1.5) * SR)
        if segments and segments[0][1] - segments[0][0] >= length:
            start = int(rng.integers(segments[0][0], segments[0][1] - length + 1))
            excerpts.append(y[start : start + length])
    return {"TurEV-DB words": words, "excerpts 0.5-1.5 s": excerpts}


def words_report(corpora: Path, thresholds: list[float], min_speech: list[float],
                 music: Path | None) -> None:
    from ser.audio import vad
    from ser.frontends.features import FeatureConfig
    from ser.frontends.windows import analysis_units

    config = FeatureConfig()
    sets = short_speech(corpora)
    noisy = {k: [with_noise(y, 10, np.random.default_rng(i)) for i, y in enumerate(v)]
             for k, v in sets.items()}
    signals = {k: v.astype(np.float32) for k, v in generated().items()}
    excerpts = music_excerpts(music) if music else {}
    anchors = [FeatureConfig(anchor=a) for a in ("start", "speech", "whole")]
    print("| threshold | min speech s | "
          + " | ".join(f"{k} ({len(v)}) clean | 10 dB" for k, v in sets.items())
          + " | generated non-speech accepted |" + (" music accepted |" if excerpts else ""))
    print("|---" * (2 + 2 * len(sets) + 1 + bool(excerpts)) + "|")
    for threshold, m in itertools.product(thresholds, min_speech):
            vc = vad.VadConfig(threshold=threshold, min_speech_s=m)
            cells = []
            for name in sets:
                for ys in (sets[name], noisy[name]):
                    refused = [not analysis_units(y, config, vad_config=vc) for y in ys]
                    cells.append(f"{100 * np.mean(refused):.1f}%")
            # Generated signals under every window placement (the clip gate looks at the
            # window: a start-anchored model sees a hum's onset).
            accepted = [k for k, y in signals.items()
                        if any(analysis_units(y, c, vad_config=vc) for c in anchors)]
            cells.append(f"{len(accepted)} of {len(signals)}" + (f" ({', '.join(accepted)})" if accepted else ""))
            if excerpts:
                heard = [k for k, y in excerpts.items() if analysis_units(y, config, vad_config=vc)]
                cells.append(f"{len(heard)} of {len(excerpts)}" + (f" ({', '.join(heard)})" if heard else ""))
            print(f"| {threshold:g} | {m:g} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    from ser.serving.inference import EmotionRecognizer

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpora", type=Path, default=CORPORA)
    ap.add_argument("--music", type=Path, default=None, help="folder of music files (.ogg/.wav/.mp3)")
    ap.add_argument("--per-corpus", type=int, default=100)
    ap.add_argument("--model", default="light")
    ap.add_argument("--words", action="store_true", help="short speech instead (see above)")
    ap.add_argument("--no-gate", action="store_true", help="without the bundle's speech gate")
    ap.add_argument("--threshold", type=float, nargs="+", default=[0.5, 0.4])
    ap.add_argument("--min-speech", type=float, nargs="+", default=[0.1, 0.064])
    args = ap.parse_args()
    if args.words:
        words_report(args.corpora, args.threshold, args.min_speech, args.music)
        return
    rec = EmotionRecognizer.load(args.model)
    if args.no_gate:
        rec.gate, rec.short_pad_s = None, 0.0
    started = time.perf_counter()

    def accepted(y: np.ndarray) -> bool:
        return rec.predict(y, sample_rate=SR).has_speech

    print("## Speech that is refused (comes back no_speech)\n")
    print("| corpus | clips | clean | 20 dB | 10 dB | 5 dB | 0 dB |\n|---|---|---|---|---|---|---|")
    clips = corpus_clips(args.corpora, args.per_corpus)
    rng = np.random.default_rng(1)
    totals = np.zeros(5)
    for corpus in sorted({c for c, _ in clips}):
        ys = [y for c, y in clips if c == corpus]
        refused = np.zeros(5)
        for y in ys:
            for j, snr in enumerate((None, 20, 10, 5, 0)):
                refused[j] += not accepted(y if snr is None else with_noise(y, snr, rng))
        totals += refused
        print(f"| {corpus} | {len(ys)} | " + " | ".join(f"{100 * r / len(ys):.1f}%" for r in refused) + " |")
    print(f"| all | {len(clips)} | " + " | ".join(f"{100 * r / len(clips):.1f}%" for r in totals) + " |")

    print("\n## Non-speech that gets an emotion\n")
    signals = generated()
    if args.music:
        signals.update(music_excerpts(args.music))
    wrong = []
    for name, y in signals.items():
        if accepted(y):
            wrong.append(name)
    print(f"{len(wrong)} of {len(signals)} non-speech inputs got an emotion "
          f"({100 * len(wrong) / len(signals):.1f}%)" + (": " + ", ".join(wrong) if wrong else ""))
    print(f"\n({time.perf_counter() - started:.0f} s, model {args.model}"
          f"{', without its speech gate' if args.no_gate else ''})")


if __name__ == "__main__":
    main()
