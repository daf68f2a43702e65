"""A speech / non-speech gate on the encoder states that the default model computes anyway:
a logistic regression on the head's standardised input, trained on corpus speech (whole clips
and word-length excerpts) against generated non-speech (tones, harmonic tones with vibrato,
mains hum, clicks, noise colours, chirps, chords, drum patterns) and, with ``--nonspeech``,
recordings without speech. It refuses what the voice activity detector lets through (music
with voice-like harmonics) and lets the detector be lenient on short words.

Measured by cross-fitting (``cross_fit``): speech by speaker folds, non-speech recordings by
file folds, so every figure is on speakers and files the gate never saw.

    python -m ser.training.speech_gate --corpora ../shared/corpora --nonspeech ../shared/vad
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

SR = 16_000
TRAIN_CORPORA = ("ravdess", "crema-d", "emovo", "nemo", "banglaser")


def synthetic_nonspeech(n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` generated signals without speech, 0.3-3 s, random kinds and parameters."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        seconds = float(rng.uniform(0.3, 3.0))
        t = np.arange(int(seconds * SR)) / SR
        kind = rng.integers(9)
        if kind == 0:  # pure tone
            y = np.sin(2 * np.pi * rng.uniform(60, 5000) * t)
        elif kind == 1:  # harmonic tone, maybe with vibrato (instrument-like)
            f0 = rng.uniform(70, 600)
            vib = rng.uniform(0, 0.03) * np.sin(2 * np.pi * rng.uniform(3, 7) * t)
            phase = 2 * np.pi * f0 * np.cumsum(1 + vib) / SR
            y = sum(np.sin(k * phase) * rng.uniform(0.2, 1) / k ** rng.uniform(0.5, 2)
                    for k in range(1, int(rng.integers(2, 12))))
        elif kind == 2:  # mains hum
            f = rng.choice([50.0, 60.0])
            y = sum(np.sin(2 * np.pi * f * k * t) * rng.uniform(0, 1) / k for k in range(1, 9))
        elif kind == 3:  # clicks
            rate = rng.uniform(0.5, 30)
            y = np.where(np.arange(len(t)) % max(1, int(SR / rate)) < rng.integers(4, 64), 1.0, 0.0)
        elif kind == 4:  # noise colour
            spectrum = np.fft.rfft(rng.standard_normal(len(t)))
            f = np.fft.rfftfreq(len(t), 1 / SR)
            spectrum[1:] /= f[1:] ** (rng.uniform(0, 2) / 2)
            y = np.fft.irfft(spectrum, len(t))
        elif kind == 5:  # chirp
            a, b = rng.uniform(80, 4000, 2)
            y = np.sin(2 * np.pi * (a * t + (b - a) / (2 * seconds) * t**2))
        elif kind == 6:  # chords that change
            y = np.zeros(len(t))
            step = max(1, int(rng.uniform(0.2, 1.0) * SR))
            for s in range(0, len(t), step):
                seg = slice(s, s + step)
                for ratio in (1.0, 1.26, 1.5, rng.choice([1.78, 2.0])):
                    f = rng.uniform(100, 500) * ratio
                    y[seg] += sum(np.sin(2 * np.pi * f * k * t[seg]) / k**1.5 for k in range(1, 5))
        elif kind == 7:  # drum pattern
            y = np.zeros(len(t))
            beat = rng.uniform(0.1, 0.5)
            hit = np.exp(-np.arange(int(0.08 * SR)) / (rng.uniform(0.005, 0.03) * SR))
            for s in np.arange(0, seconds, beat):
                i = int(s * SR)
                seg = y[i : i + len(hit)]
                seg += hit[: len(seg)] * (rng.standard_normal(len(seg)) if rng.random() < 0.5
                                          else np.sin(2 * np.pi * rng.uniform(50, 150) * np.arange(len(seg)) / SR))
        else:  # amplitude-modulated tone (a syllable-rate envelope without a voice)
            env = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(2, 8) * t))
            y = env * np.sin(2 * np.pi * rng.uniform(100, 1000) * t)
        y = np.asarray(y, np.float64)
        y *= 10 ** (rng.uniform(-40, -3) / 20) / max(np.abs(y).max(), 1e-9)
        if rng.random() < 0.3:  # a noise floor
            y += rng.standard_normal(len(y)) * 10 ** (rng.uniform(-70, -45) / 20)
        out.append(y.astype(np.float32))
    return out


def speech_clips(corpora: Path, per_corpus: int, seed: int = 0) -> list[tuple[str, str, np.ndarray]]:
    """(speaker, kind, samples): for each of ``per_corpus`` clips per corpus, the clip
    (``whole``), a copy under a random recording condition of training (``degraded``: noise at
    0-20 dB, a room, the telephone band, a codec, a low level, an excerpt) and a word-length
    excerpt (``word``: 0.15-1 s of the speech the detector finds)."""
    from ser.audio import decode
    from ser.audio.vad import speech_segments
    from ser.training.augment import training_condition
    from ser.training.datasets import scan

    rng = np.random.default_rng(seed)
    out = []
    for name in TRAIN_CORPORA:
        records = scan(corpora / name).records
        for k in rng.choice(len(records), size=min(per_corpus, len(records)), replace=False):
            r = records[k]
            y = decode(str(r.path), SR).samples
            speaker = f"{name}:{r.speaker}"
            out.append((speaker, "whole", y))
            out.append((speaker, "degraded", training_condition(y, SR, rng)))
            segments = speech_segments(y)
            if segments:
                s, e = segments[0]
                length = int(rng.uniform(0.15, 1.0) * SR)
                start = int(rng.integers(s, max(s + 1, e - length)))
                out.append((speaker, "word", y[start : start + length]))
    return out


def nonspeech_recordings(vad_dir: Path) -> dict[str, list[np.ndarray]]:
    """Each non-speech recording of ``vad_dir`` (but the song) as 3-s windows and 0.5-1.5-s excerpts."""
    from ser.audio import decode

    rng = np.random.default_rng(0)
    out = {}
    for row in csv.DictReader(open(vad_dir / "manifest.csv")):
        if row["kind"] != "nonspeech" or "Fishin" in row["path"]:
            continue
        y = decode(str(vad_dir / row["path"]), SR, max_duration_s=None).samples
        pieces = [y[i : i + 3 * SR] for i in range(0, max(1, len(y) - SR), 3 * SR)][:20]
        for _ in range(10):
            length = int(rng.uniform(0.5, 1.5) * SR)
            start = int(rng.integers(0, max(1, len(y) - length)))
            pieces.append(y[start : start + length])
        out[row["path"]] = [p for p in pieces if len(p) >= 0.25 * SR]
    return out


def embed(rec, clips: list[np.ndarray]) -> np.ndarray:
    """The head's standardised input for each clip placed as the served path places it."""
    from ser.frontends.windows import fit_window

    windows = np.stack([fit_window(y, rec.feature_config) for y in clips])
    out = [rec.classifier.scaler.transform(rec._model_inputs(windows[i : i + 64]))
           for i in range(0, len(windows), 64)]
    return np.concatenate(out)


def fit(x: np.ndarray, y: np.ndarray, c: float = 0.01) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000).fit(x, y)
    return model.coef_[0].astype(np.float32), float(model.intercept_[0])


def score(x: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    """P(speech) of standardised head inputs."""
    return 1 / (1 + np.exp(-(x @ w + b)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpora", type=Path, required=True)
    ap.add_argument("--nonspeech", type=Path, help="../shared/vad (its manifest.csv)")
    ap.add_argument("--per-corpus", type=int, default=80)
    ap.add_argument("--synthetic", type=int, default=600)
    ap.add_argument("--model", default="default")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--c", type=float, nargs="+", default=[0.01])
    ap.add_argument("--threshold", type=float, default=0.5, help="P(speech) a unit needs")
    ap.add_argument("--bundle", type=Path,
                    help="write the gate, fitted on everything, into this bundle's config.json")
    args = ap.parse_args()
    from ser.serving.inference import EmotionRecognizer

    rec = EmotionRecognizer.load(args.model)
    speech = speech_clips(args.corpora, args.per_corpus)
    synthetic = synthetic_nonspeech(args.synthetic)
    recordings = nonspeech_recordings(args.nonspeech) if args.nonspeech else {}
    xs = embed(rec, [y for _, _, y in speech])
    xn = embed(rec, synthetic)
    xr = {k: embed(rec, v) for k, v in recordings.items()}
    speakers = sorted({s for s, _, _ in speech})
    fold_of_speaker = {s: i % args.folds for i, s in enumerate(np.random.default_rng(0).permutation(speakers))}
    fs = np.array([fold_of_speaker[s] for s, _, _ in speech])
    fn = np.arange(len(synthetic)) % args.folds
    files = sorted(xr)
    ff = {f: i % args.folds for i, f in enumerate(np.random.default_rng(1).permutation(files))}
    kinds = np.array([k for _, k, _ in speech])
    for c in args.c:
        ps, pn, pr, fold_gates = np.zeros(len(xs)), np.zeros(len(xn)), {}, {}
        for k in range(args.folds):
            train_x = [xs[fs != k], xn[fn != k]] + [xr[f] for f in files if ff[f] != k]
            train_y = [np.ones((fs != k).sum()), np.zeros((fn != k).sum())] + [
                np.zeros(len(xr[f])) for f in files if ff[f] != k]
            w, b = fit(np.concatenate(train_x), np.concatenate(train_y), c)
            fold_gates[k] = (w, b)
            ps[fs == k] = score(xs[fs == k], w, b)
            pn[fn == k] = score(xn[fn == k], w, b)
            for f in files:
                if ff[f] == k:
                    pr[f] = score(xr[f], w, b)
        print(f"C={c}: held-out speech clips {len(xs)}, synthetic {len(xn)}, "
              f"recordings {len(files)}")
        for t in (0.2, 0.3, 0.5):
            rec_acc = {Path(f).stem[:24]: float((pr[f] >= t).mean()) for f in files}
            refused = ", ".join(f"{k} {np.mean(ps[kinds == k] < t):.3f}" for k in ("whole", "degraded", "word"))
            print(f"  t={t}: speech refused {np.mean(ps < t):.3f} ({refused}); "
                  f"synthetic accepted {np.mean(pn >= t):.3f}; "
                  f"recordings' windows accepted: " + ", ".join(f"{k} {v:.2f}" for k, v in rec_acc.items()))
        if recordings:  # each recording through the served path, with the gate of its fold
            from ser.serving.classifier import SpeechGate

            saved = rec.gate
            heard = []
            for f in files:
                w, b = fold_gates[ff[f]]
                rec.gate = SpeechGate({"weights": w, "bias": b, "threshold": args.threshold},
                                      rec.classifier.scaler)
                if rec.predict(str(args.nonspeech / f), max_duration_s=None).has_speech:
                    heard.append(Path(f).stem[:24])
            rec.gate = saved
            print(f"  served path, t={args.threshold}, each recording with the gate that never saw it: "
                  f"{len(heard)} of {len(files)} get an emotion" + (f" ({', '.join(heard)})" if heard else ""))
    if args.bundle:
        w, b = fit(np.concatenate([xs, xn, *xr.values()]),
                   np.concatenate([np.ones(len(xs)), np.zeros(len(xn))] + [np.zeros(len(v)) for v in xr.values()]),
                   args.c[0])
        path = args.bundle / "config.json"
        config = json.loads(path.read_text())
        config["speech_gate"] = {
            "threshold": args.threshold, "bias": b, "c": args.c[0],
            "trained_on": (f"{len(xs)} speech clips and word-length excerpts of {', '.join(TRAIN_CORPORA)} "
                           f"({len(speakers)} speakers); {len(xn)} generated non-speech signals; "
                           f"{sum(map(len, xr.values()))} windows of {len(xr)} non-speech recordings"),
            "command": "python -m ser.training.speech_gate --corpora CORPORA --nonspeech VAD "
                       f"--per-corpus {args.per_corpus} --synthetic {args.synthetic} --c {args.c[0]} "
                       f"--threshold {args.threshold} --bundle {args.bundle}",
            "weights": [round(float(v), 6) for v in w],
        }
        path.write_text(json.dumps(config, indent=1) + "\n")
        print(f"wrote the gate into {path}")


if __name__ == "__main__":
    main()
