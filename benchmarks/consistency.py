"""The same speech alone and inside a recording: corpus clips (RAVDESS, CREMA-D, EMOVO) are
predicted alone, then in recordings of 10 clips with 0.5-2 s of silence between them; a clip's
answer inside is the length-weighted mean of the segments over it. Prints how often the top
emotion is the same, and the clips refused (no speech) in one place only.

    python benchmarks/consistency.py [--clips 400] [--model default] [--seed 1]
"""

from __future__ import annotations

import argparse

import numpy as np
from common import CORPORA


def main() -> None:
    import soundfile as sf
    import soxr

    from ser import EmotionRecognizer
    from ser.training.datasets import scan

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=400)
    ap.add_argument("--model", default="default")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    records = [r for c in ("ravdess", "crema-d", "emovo") for r in scan(CORPORA / c).records]
    rng.shuffle(records)
    recognizer = EmotionRecognizer.load(args.model)
    labels = recognizer.labels
    clips = []
    for r in records[: args.clips]:
        y, sr = sf.read(r.path, dtype="float32")
        clips.append(soxr.resample(y, sr, 16_000) if sr != 16_000 else y)
    alone = [recognizer.predict(y, 16_000) for y in clips]
    same = refused_alone = refused_inside = 0
    for i in range(0, len(clips), 10):
        parts, bounds, pos = [], [], 0
        for y in clips[i : i + 10]:
            gap = np.zeros(int(rng.uniform(0.5, 2.0) * 16_000), np.float32)
            parts += [gap, y]
            bounds.append(((pos + len(gap)) / 16_000, (pos + len(gap) + len(y)) / 16_000))
            pos += len(gap) + len(y)
        recording = recognizer.predict(np.concatenate(parts + [np.zeros(16_000, np.float32)]), 16_000)
        for (start, end), a in zip(bounds, alone[i : i + 10]):
            over = [s for s in recording.segments if s.end_s > start and s.start_s < end]
            if not over:
                same += not a.has_speech
                refused_inside += a.has_speech
                continue
            weights = [min(s.end_s, end) - max(s.start_s, start) for s in over]
            mean = sum(w * np.array([s.probabilities[k] for k in labels]) for w, s in zip(weights, over))
            if not a.has_speech:
                refused_alone += 1
            elif labels[int(np.argmax(mean))] == a.emotion:
                same += 1
    n = len(clips)
    print(f"{n} clips, model {args.model}, seed {args.seed}: same top emotion {same / n:.1%}; "
          f"refused alone but analysed inside {refused_alone}; refused inside only {refused_inside}")


if __name__ == "__main__":
    main()
