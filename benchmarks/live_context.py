"""How much audio after an utterance its window needs: the emotions of recordings analysed with
1.0 s of context after each utterance (the rule before live sessions) and with shorter
contexts, which let a live stream report an utterance sooner (it waits for twice the context
after the utterance's end, to know that the next utterance will not cut it).

Recordings: TESS clips (2 speakers the default model never trained on, 7 emotions, each clip's
label known) with 0.3-2-s pauses, once with digital silence between clips and once with a
-45 dBFS noise floor throughout (a room); accuracy is over the utterances that match one clip.

    python benchmarks/live_context.py [--clips 400] [--contexts 1.0 0.5 0.3]
"""

from __future__ import annotations

import argparse

import numpy as np
from common import CORPORA, machine_baseline

LABELS = {"angry": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy",
          "neutral": "neutral", "pleasant_surprise": "surprise", "sad": "sad"}


def recording(clips: int, noise_dbfs: float | None, seed: int = 0):
    """(samples, [(start_s, end_s, label)]) of ``clips`` TESS clips with pauses."""
    from ser.audio import decode

    rng = np.random.default_rng(seed)
    files = sorted((CORPORA / "tess").rglob("*.ogg"))
    parts, truth, at = [], [], 0
    for f in rng.choice(files, size=clips, replace=False):
        y = decode(str(f), 16_000).samples
        label = LABELS[f.parent.name.split("_", 1)[1].lower()]
        truth.append((at / 16_000, (at + len(y)) / 16_000, label))
        gap = np.zeros(int(rng.uniform(0.3, 2.0) * 16_000), np.float32)
        parts += [y, gap]
        at += len(y) + len(gap)
    y = np.concatenate(parts)
    if noise_dbfs is not None:
        y = y + rng.standard_normal(len(y)).astype(np.float32) * 10 ** (noise_dbfs / 20)
    return y.astype(np.float32), truth


def analyse(rec, y, context_after_s: float):
    from ser.frontends.windows import stream_units

    units = list(stream_units([y], rec.feature_config, clip_first=False,
                              context_after_s=context_after_s))
    probs = rec._unit_answers(units)[0]
    return [(u.start_s, u.end_s, rec.labels[int(p.argmax())]) for u, p in zip(units, probs)]


def scored(utterances, truth):
    """(utterances that overlap exactly one clip, of them right)."""
    n = right = 0
    for s, e, emotion in utterances:
        hits = [label for a, b, label in truth if a < e and s < b]
        if len(hits) == 1:
            n += 1
            right += emotion == hits[0]
    return n, right


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=400)
    ap.add_argument("--contexts", type=float, nargs="+", default=[1.0, 0.5, 0.3])
    args = ap.parse_args()
    from ser import EmotionRecognizer

    print(machine_baseline())
    rec = EmotionRecognizer.load("default")
    for noise in (None, -45.0):
        y, truth = recording(args.clips, noise)
        base = None
        for c in args.contexts:
            got = analyse(rec, y, c)
            n, right = scored(got, truth)
            same = "" if base is None else (
                f"  same utterances as {args.contexts[0]} s: {[u[:2] for u in got] == [u[:2] for u in base]},"
                f" same emotion {sum(a[2] == b[2] for a, b in zip(got, base))}/{len(base)}")
            base = base or got
            print(f"{'silence' if noise is None else f'{noise:.0f} dBFS noise'}: context after "
                  f"{c:.1f} s: {len(got)} utterances, accuracy {right}/{n} = {right / max(n, 1):.3f}{same}")


if __name__ == "__main__":
    main()
