"""Feature extraction speed: ser's shared-STFT pipeline vs a naive reference implementation.

The naive reference computes each feature separately from the waveform at 22,050 Hz, as the
reference description's tools typically do, with tonnetz on the harmonic component (HPSS +
CQT chroma). Both run single-threaded on the same decoded 3-s windows of real corpus clips.

    python benchmarks/features.py [--clips 30] [--repeats 3] [--corpus]

``--corpus`` also times a cold whole-corpus extraction (all of ../shared/corpora, 2 workers,
fresh temporary cache) and then the warm re-run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import librosa
import numpy as np
from threadpoolctl import threadpool_limits

from ser.audio import load_audio
from ser.training.datasets import scan
from ser.training.extraction import extract
from ser.frontends.features import FeatureConfig
from ser.frontends.windows import clip_features
from common import CORPORA



def naive_features(y: np.ndarray, sr: int, with_hpss: bool = True) -> np.ndarray:
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40)
    delta = librosa.feature.delta(mfcc)
    chroma = librosa.feature.chroma_stft(y=y, sr=sr)
    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_mels=128))
    contrast = librosa.feature.spectral_contrast(y=y, sr=sr)
    tonal_input = librosa.effects.harmonic(y) if with_hpss else y
    tonnetz = librosa.feature.tonnetz(y=tonal_input, sr=sr)
    return np.concatenate([mfcc, delta, chroma, mel, contrast, tonnetz]).T


def time_per_clip(fn, clips, repeats):
    per_clip = []
    for y in clips:
        runs = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn(y)
            runs.append(time.perf_counter() - t)
        per_clip.append(min(runs))
    return statistics.median(per_clip) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--corpus", action="store_true", help="also time a whole-corpus run")
    args = parser.parse_args()

    records = scan(CORPORA).records
    picks = records[:: max(1, len(records) // args.clips)][: args.clips]
    config = FeatureConfig()
    n22 = 3 * 22_050
    clips22 = [librosa.util.fix_length(load_audio(r.path, 22_050), size=n22) for r in picks]
    clips16 = [load_audio(r.path, config.sample_rate) for r in picks]

    with threadpool_limits(1):
        for y in clips16[:2]:  # warm up numba-compiled helpers and filter banks
            clip_features(y, config)
        naive_features(clips22[0], 22_050)
        rows = [
            ("naive reference (22,050 Hz, HPSS + CQT tonnetz)",
             time_per_clip(lambda y: naive_features(y, 22_050), clips22, args.repeats)),
            ("naive, tonnetz without HPSS (CQT only)",
             time_per_clip(lambda y: naive_features(y, 22_050, False), clips22, args.repeats)),
            ("ser pipeline (16 kHz, shared STFT, incl. speech trim)",
             time_per_clip(lambda y: clip_features(y, config), clips16, args.repeats)),
        ]
    base = rows[0][1]
    print(f"Per-clip feature extraction, median over {len(picks)} real clips "
          f"(best of {args.repeats}), one thread")
    print(f"| {'pipeline':<55} | {'ms/clip':>8} | {'speed-up':>8} |")
    print(f"|{'-' * 57}|{'-' * 10}|{'-' * 10}|")
    for name, ms in rows:
        print(f"| {name:<55} | {ms:>8.2f} | {base / ms:>7.1f}x |")

    if args.corpus:
        with tempfile.TemporaryDirectory() as cache:
            t = time.perf_counter()
            cold = extract(records, config, cache_dir=cache, workers=2, progress=False)
            cold_s = time.perf_counter() - t
            t = time.perf_counter()
            warm = extract(records, config, cache_dir=cache, workers=2, progress=False)
            warm_s = time.perf_counter() - t
        print(f"\nWhole corpus ({len(records)} clips, 2 workers): cold {cold_s:.1f} s "
              f"({len(cold.records)} usable, {len(cold.failures)} skipped), "
              f"warm {warm_s:.1f} s ({warm.cache_hits} cache hits)")


if __name__ == "__main__":
    main()
