"""Accuracy and refusals under the conditions people record in, through the served path
(``EmotionRecognizer.predict``): clips of a corpus the model never trained on (TESS by
default), clean and under each of ``ser.training.augment.BENCHMARK_CONDITIONS`` — white and pink noise
at a set SNR, simulated rooms (exponentially decaying noise as the impulse response, RT60 0.3
and 0.8 s), a telephone channel (8 kHz, 300-3,400 Hz, mu-law), Opus at 12 kbit/s and MP3 at
32 kbit/s (PyAV), a level of -30 dBFS, word-length excerpts of 0.5-1.5 s of the speech — plus
babble (four CREMA-D speakers at once) at 10 and 5 dB. Prints accuracy over the clips
analysed and the share refused as no speech. (``ser cv --test-conditions`` scores the CV
folds' held-out speakers under the same conditions.)

    python benchmarks/robustness.py [--model default] [--corpus tess] [--clips 300] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np
from common import CORPORA

SR = 16_000


def main() -> None:
    from ser import EmotionRecognizer
    from ser.audio import decode
    from ser.training.augment import BENCHMARK_CONDITIONS, at_snr, corrupt
    from ser.training.datasets import scan

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--corpus", default="tess")
    ap.add_argument("--clips", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    records = scan(CORPORA / args.corpus).records
    records = [records[i] for i in rng.choice(len(records), min(args.clips, len(records)), replace=False)]
    others = scan(CORPORA / "crema-d").records
    babble_pool = [decode(others[i].path, SR).samples for i in rng.choice(len(others), 60, replace=False)]
    recognizer = EmotionRecognizer.load(args.model)

    def babble(n: int) -> np.ndarray:
        mix = np.zeros(n, np.float32)
        for k in rng.choice(len(babble_pool), 4, replace=False):  # four other voices at once
            voice = np.tile(babble_pool[k], -(-n // len(babble_pool[k])))[:n]
            mix += voice / (np.sqrt(np.mean(voice**2)) + 1e-9)
        return mix

    conditions = {"clean": lambda y: y}
    for name in BENCHMARK_CONDITIONS:
        conditions[name] = lambda y, name=name: corrupt(y, SR, name, rng)
    conditions["babble 10 dB"] = lambda y: at_snr(y, babble(len(y)), 10)
    conditions["babble 5 dB"] = lambda y: at_snr(y, babble(len(y)), 5)
    clips = [(decode(r.path, SR).samples, r.label) for r in records]
    print(f"model {args.model}, {len(clips)} {args.corpus} clips (never trained on), seed {args.seed}")
    print("| condition | accuracy (analysed) | refused as no speech |\n|---|---|---|")
    for name, condition in conditions.items():
        right = refused = 0
        for y, label in clips:
            p = recognizer.predict(condition(y), sample_rate=SR)
            if not p.has_speech:
                refused += 1
            else:
                right += p.emotion == label
        analysed = len(clips) - refused
        print(f"| {name} | {100 * right / max(analysed, 1):.1f}% | {100 * refused / len(clips):.1f}% |",
              flush=True)


if __name__ == "__main__":
    main()
