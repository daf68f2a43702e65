"""Why the pipeline runs at 16 kHz: how much each corpus carries above 8 kHz at 22,050 Hz.

If one corpus has energy above 8 kHz and another has none, a model fed the full band can tell
the corpus (and so, partly, the label distribution) from the top bands alone.

    python benchmarks/bandwidth.py [--per-corpus 100]
"""

from __future__ import annotations

import argparse

import librosa
import numpy as np

from ser.audio import load_audio
from ser.training.datasets import scan
from common import CORPORA



def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-corpus", type=int, default=100)
    args = parser.parse_args()
    records = scan(CORPORA).records
    sr = 22_050
    print(f"Share of spectral energy above 8 kHz and top-band level, at {sr} Hz "
          f"({args.per_corpus} clips per corpus)")
    print(f"| {'corpus':<8} | {'energy > 8 kHz':>15} | {'mean dB 8-11 kHz rel. 0-8 kHz':>30} |")
    print(f"|{'-' * 10}|{'-' * 17}|{'-' * 32}|")
    for corpus in sorted({r.corpus for r in records}):
        rs = [r for r in records if r.corpus == corpus]
        rs = rs[:: max(1, len(rs) // args.per_corpus)][: args.per_corpus]
        shares, rel_db = [], []
        for r in rs:
            y = load_audio(r.path, sr)
            power = np.abs(librosa.stft(y, n_fft=1024)) ** 2
            freqs = librosa.fft_frequencies(sr=sr, n_fft=1024)
            high = power[freqs > 8000].sum()
            shares.append(high / power.sum())
            rel_db.append(10 * np.log10(power[freqs > 8000].mean() / power[freqs <= 8000].mean() + 1e-20))
        print(f"| {corpus:<8} | {100 * np.mean(shares):>14.4f}% | {np.median(rel_db):>30.1f} |")


if __name__ == "__main__":
    main()
