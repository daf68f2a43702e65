"""How a recording's summary should be decided: recordings built from clips of corpora the
default model never trained on (TESS, nEMO) — "single" (10 clips of one speaker and emotion)
and "mixed" (3 emotions of one speaker, up to 4 clips each) — and, for each threshold on the
top emotion's share of speaking time, how often a single-emotion recording is named (and named
right) and how often a mixed one is called mixed. Clips are predicted alone (a clip inside a
recording gets the same answer 93-94% of the time: benchmarks/consistency.py).

    python benchmarks/summary_rule.py [--clips 900] [--seed 0]
"""

from __future__ import annotations

import argparse
import collections

import numpy as np
from common import CORPORA


def main() -> None:
    from ser import EmotionRecognizer
    from ser.training.datasets import load_csv, scan

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=900)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    records = scan(CORPORA / "tess").records + load_csv(CORPORA / "nemo" / "manifest.csv").records
    rng.shuffle(records)
    records = records[: args.clips]
    recognizer = EmotionRecognizer.load()
    predicted = {}
    for r in records:
        p = recognizer.predict(r.path)
        if p.has_speech:
            predicted[r.path] = (p.emotion, p.speech_s)
    groups = collections.defaultdict(list)
    for r in records:
        if r.path in predicted:
            groups[(r.speaker, r.label)].append(r)

    def shares(clips):
        time = collections.Counter()
        for r in clips:
            emotion, seconds = predicted[r.path]
            time[emotion] += seconds
        total = sum(time.values())
        return {k: v / total for k, v in time.items()}

    rows = [("single", label, shares(list(rng.choice(clips, 10, replace=False))))
            for (speaker, label), clips in groups.items() if len(clips) >= 10]
    labels_of = collections.defaultdict(list)
    for speaker, label in groups:
        labels_of[speaker].append(label)
    for speaker, labels in labels_of.items():
        for _ in range(8 if len(labels) >= 3 else 0):
            chosen = rng.choice(labels, 3, replace=False)
            clips = [c for lab in chosen for c in rng.choice(
                groups[(speaker, lab)], min(4, len(groups[(speaker, lab)])), replace=False)]
            rows.append(("mixed", None, shares(clips)))
    single = [r for r in rows if r[0] == "single"]
    mixed = [r for r in rows if r[0] == "mixed"]
    print(f"{len(single)} single-emotion and {len(mixed)} mixed recordings, seed {args.seed}")
    print("| threshold | single named | named right | mixed called mixed | balanced |")
    print("|---|---|---|---|---|")
    for th in (0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9):
        named = [r for r in single if max(r[2].values()) >= th]
        right = sum(max(r[2], key=r[2].get) == r[1] for r in named)
        said = sum(max(r[2].values()) < th for r in mixed)
        balanced = 0.5 * (len(named) / len(single) + said / len(mixed))
        print(f"| {th:.2f} | {len(named)}/{len(single)} | {right}/{len(named)} | "
              f"{said}/{len(mixed)} | {balanced:.3f} |")


if __name__ == "__main__":
    main()
