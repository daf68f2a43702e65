"""Session adaptation on corpora the default never trained on, through the served path: every
clip of TESS (English, 2 speakers, 7 classes) and TurEV-DB (Turkish words, 4 speakers, 4
classes) predicted once by the shipped default, then one speaker's clips answered together as
``ser predict --speakers`` does (:meth:`EmotionRecognizer.adapt_speakers`). Sessions per
speaker (seed 0): **all** his clips; **balanced** — 2 clips per class, 20 draws; **skewed** —
8 clips of the calmest class (TESS neutral, TurEV-DB calm) and 2 others, 20 draws;
**single-emotion** — 10 clips of one class, 3 draws per class. Accuracy restricted to the
corpus's classes (the argmax over them), per clip, plain (each clip alone) vs adapted.

    python benchmarks/adaptation_heldout.py [--corpora ../shared/corpora]
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np
from common import CORPORA, machine_baseline


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpora", type=__import__("pathlib").Path, default=CORPORA)
    args = ap.parse_args()
    from ser import EmotionRecognizer
    from ser.training.datasets import load_csv, scan

    print(machine_baseline())
    rec = EmotionRecognizer.load("default")
    corpora = {"tess": (scan(args.corpora / "tess").records, "neutral"),
               "turev-db": (load_csv(args.corpora / "turev-db" / "manifest.csv").records, "calm")}
    rng = np.random.default_rng(0)
    print("| corpus | session | sessions | adapted | clips | plain % | adapted % |\n|---|---|---|---|---|---|---|")
    for name, (records, calm) in corpora.items():
        started = time.perf_counter()
        results = list(rec.predict_many([r.path for r in records], workers=2))
        spoken = [(r, p) for r, p in zip(records, results) if not isinstance(p, Exception) and p.has_speech]
        classes = sorted({r.label for r, _ in spoken})
        cells = collections.defaultdict(list)
        for r, p in spoken:
            cells[(r.speaker, r.label)].append((r, p))
        speakers = sorted({r.speaker for r, _ in spoken})

        def restricted(p) -> str:
            return max(classes, key=lambda c: p.probabilities[c])

        def draw(speaker, label, k):
            pool = cells[(speaker, label)]
            return [pool[i] for i in rng.choice(len(pool), min(k, len(pool)), replace=False)]

        mixes = {
            "all": lambda s: [[x for c in classes for x in cells[(s, c)]]],
            "balanced": lambda s: [[x for c in classes for x in draw(s, c, 2)] for _ in range(20)],
            "skewed": lambda s: [draw(s, calm, 8) + [x for c in rng.choice([c for c in classes if c != calm], 2)
                                                     for x in draw(s, c, 1)] for _ in range(20)],
            "single-emotion": lambda s: [draw(s, c, 10) for c in classes for _ in range(3)],
        }
        for mix, make in mixes.items():
            n_sessions = n_adapted = clips = plain_right = adapted_right = 0
            for s in speakers:
                for session in make(s):
                    if not session:  # a speaker without the class
                        continue
                    together = rec.adapt_speakers([p for _, p in session])
                    n_sessions += 1
                    n_adapted += together[0].adapted_utterances > 0
                    for (r, p), q in zip(session, together):
                        clips += 1
                        plain_right += restricted(p) == r.label
                        adapted_right += restricted(q) == r.label
            print(f"| {name} | {mix} | {n_sessions} | {n_adapted} | {clips} | "
                  f"{100 * plain_right / clips:.1f} | {100 * adapted_right / clips:.1f} |", flush=True)
        print(f"<!-- {name}: {len(records)} clips, {len(spoken)} with speech, "
              f"{time.perf_counter() - started:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
