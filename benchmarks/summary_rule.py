"""How a recording's summary should be decided, on speakers the model never heard.

Every clip of the five training corpora gets an out-of-fold answer (5 folds by speaker, seed 0;
the cached pooled states of the shipped default's front end and a logistic head, C 0.001,
balanced classes — the default's head is linear too). Recordings are built from one speaker's
clips (seed 0):

* single — K clips of one speaker and one emotion (K = 8 and 24; with fewer clips, all of them
  when at least 6): a speaker angry the whole time must be named angry;
* mixed — 3 of the speaker's emotions, up to 4 clips each: it must be called mixed.

For each rule: how many single-emotion recordings are named, named right, and how many mixed
ones are called mixed. Shares are of the recording's clips (clips are 2-4 s).

    python benchmarks/summary_rule.py [--corpora ../shared/corpora]
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np
from adaptation_cv import head, load
from common import CORPORA


def out_of_fold(records, x, labels, folds):
    y = np.array([labels.index(r.label) for r in records])
    predicted = np.zeros(len(records), int)
    for test in folds:
        train = np.setdiff1d(np.arange(len(records)), test)
        mean, std = x[train].mean(0), x[train].std(0) + 1e-5
        model = head((x[train] - mean) / std, y[train], len(labels))
        predicted[test] = model.classes_[model.predict_proba((x[test] - mean) / std).argmax(1)]
    return y, predicted


def rules():
    """name -> f(sorted shares, descending) -> named?"""
    out = {f"share >= {t:.2f}": (lambda t: lambda s: s[0] >= t)(t) for t in (0.5, 0.55, 0.6, 0.65, 0.7)}
    for floor in (0.45, 0.5):
        out[f"share >= 0.60, or >= {floor:.2f} and >= 3 x the next"] = (
            lambda f: lambda s: s[0] >= 0.6 or (s[0] >= f and s[0] >= 3 * (s[1] if len(s) > 1 else 0)))(floor)
    for floor in (0.4, 0.5):
        for ratio in (2.0, 2.5, 3.0):
            out[f"share >= {floor:.2f} and >= {ratio:g} x the next"] = (
                lambda f, r: lambda s: s[0] >= f and s[0] >= r * (s[1] if len(s) > 1 else 0))(floor, ratio)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpora", type=__import__("pathlib").Path, default=CORPORA)
    args = ap.parse_args()
    from ser.training.splits import speaker_folds

    started = time.perf_counter()
    records, x, labels = load(args.corpora)
    y, predicted = out_of_fold(records, x, labels, speaker_folds(records, 5, seed=0))
    print(f"out-of-fold WA {100 * (y == predicted).mean():.1f}% ({time.perf_counter() - started:.0f} s)")
    rng = np.random.default_rng(0)
    cells = collections.defaultdict(list)
    for j, r in enumerate(records):
        cells[(r.corpus, r.speaker, y[j])].append(j)

    def shares(members):
        counts = collections.Counter(predicted[members].tolist())
        return sorted((c / len(members) for c in counts.values()), reverse=True)

    recordings = []  # (kind, K, true label or None, predicted top label, sorted shares)
    for (corpus, speaker, label), members in cells.items():
        for k in (8, 24):
            if len(members) >= min(k, 6) and (k == 8 or len(members) > 8):
                chosen = rng.choice(members, min(k, len(members)), replace=False)
                top = collections.Counter(predicted[chosen].tolist()).most_common(1)[0][0]
                recordings.append(("single", k, label, top, shares(chosen)))
    speakers = collections.defaultdict(list)
    for corpus, speaker, label in cells:
        speakers[(corpus, speaker)].append(label)
    for (corpus, speaker), emotions in speakers.items():
        for _ in range(4 if len(emotions) >= 3 else 0):
            chosen = np.concatenate([rng.choice(cells[(corpus, speaker, e)],
                                                min(4, len(cells[(corpus, speaker, e)])), replace=False)
                                     for e in rng.choice(emotions, 3, replace=False)])
            recordings.append(("mixed", len(chosen), None, None, shares(chosen)))
    single = {k: [r for r in recordings if r[0] == "single" and r[1] == k] for k in (8, 24)}
    mixed = [r for r in recordings if r[0] == "mixed"]
    print(f"single-emotion recordings: {len(single[8])} of up to 8 clips, {len(single[24])} of 9-24; "
          f"mixed: {len(mixed)} (3 emotions, up to 4 clips each); seed 0\n")
    print("| rule | single ≤8 named (right) | single 9-24 named (right) | mixed called mixed | balanced |")
    print("|---|---|---|---|---|")
    for name, rule in rules().items():
        cols, rates = [], []
        for k in (8, 24):
            named = [r for r in single[k] if rule(r[4])]
            right = sum(r[2] == r[3] for r in named)
            cols.append(f"{len(named)}/{len(single[k])} ({right})")
            rates.append(len(named) / len(single[k]))
        said = sum(not rule(r[4]) for r in mixed)
        balanced = 0.5 * (np.mean(rates) + said / len(mixed))
        print(f"| {name} | {cols[0]} | {cols[1]} | {said}/{len(mixed)} | {balanced:.3f} |")


if __name__ == "__main__":
    main()
