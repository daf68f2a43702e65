"""Speaker and channel adaptation of the pooled encoder states, measured by CV on unseen speakers:
5 folds by speaker (each corpus's speakers spread over them, seed 0), on the cached pooled
states of the shipped default's front end (Whisper-base states 2-5, mean+std pooled, window as
served), standardised with the fold's training statistics, a logistic head (C 0.001, classes
balanced) per variant. Every test speaker forms sessions, three ways:

* balanced — all of a speaker's clips (the corpora's mix of emotions);
* skewed — per speaker, neutral clips plus at most a quarter as many of the other emotions
  (most speech neutral, as in real calls); speakers without neutral clips are left out;
* single-emotion — one session per speaker and emotion (a speaker angry the whole time).

Variants: ``plain`` (no adaptation); ``mean`` (a speaker's mean removed, head trained the same
way with training speakers' means; test sessions use their own mean, shrunk toward 0 by
n/(n+k)); ``expected`` (the offset is the session's mean of x − Σ_k p(k|x) μ_k — its emotions'
expected class means removed first — iterated 3 times, shrunk n/(n+k); head trained with
true-label offsets). Accuracy (WA) per corpus and mix.

    python benchmarks/adaptation_cv.py [--corpora ../shared/corpora] [--shrink 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import CORPORA

CORPORA_USED = ("ravdess", "crema-d", "emovo", "nemo", "banglaser")


def load(corpora):
    from ser.frontends.encoders import EncoderConfig
    from ser.serving.bundle import read_bundle, resolve_model
    from ser.training.datasets import scan
    from ser.training.extraction import extract_embeddings

    bundle = read_bundle(resolve_model("default"))
    records = [r for name in CORPORA_USED for r in scan(corpora / name).records]
    enc = bundle.config["encoder"]
    ext = extract_embeddings(records, bundle.feature_config,
                             EncoderConfig(runtime="onnx", states=tuple(enc["states"])),
                             progress=False)
    print(f"{len(ext.records)} clips, {ext.cache_hits} from the cache", flush=True)
    return ext.records, np.asarray(ext.features, np.float32), bundle.labels


def head(x, y, n_classes):
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=0.001, class_weight="balanced", max_iter=500)
    model.fit(x, y)
    return model


def class_means(x, y, n_classes):
    return np.stack([x[y == k].mean(0) if np.any(y == k) else np.zeros(x.shape[1]) for k in range(n_classes)])


def expected_offset(model, x, mu, shrink, iterations=3):
    offset = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = model.predict_proba(x - offset)
        full = np.zeros((len(x), len(mu)))
        full[:, model.classes_] = p
        offset = (x - full @ mu).mean(0) * len(x) / (len(x) + shrink)
    return offset


def sessions(records, idx, mix, labels):
    """Lists of indices into ``idx``: the sessions of the test speakers under ``mix``."""
    by_speaker: dict = {}
    for j in idx:
        by_speaker.setdefault((records[j].corpus, records[j].speaker), []).append(j)
    out = []
    rng = np.random.default_rng(0)
    for members in by_speaker.values():
        if mix == "balanced":
            out.append(members)
        elif mix == "skewed":
            neutral = [j for j in members if records[j].label == "neutral"]
            other = [j for j in members if records[j].label != "neutral"]
            if neutral:
                out.append(neutral + list(rng.permutation(other)[: max(1, len(neutral) // 4)]))
        else:
            for label in labels:
                one = [j for j in members if records[j].label == label]
                if one:
                    out.append(one)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpora", type=__import__("pathlib").Path, default=CORPORA)
    ap.add_argument("--shrink", type=float, default=5.0)
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    from ser.training.splits import speaker_folds

    started = time.perf_counter()
    records, x, labels = load(args.corpora)
    y = np.array([labels.index(r.label) for r in records])
    n_classes = len(labels)
    folds = speaker_folds(records, args.folds, seed=0)
    mixes = ("balanced", "skewed", "single-emotion")
    variants = ("plain", "mean", "expected")
    right = {(v, m): np.zeros(len(records)) for v in variants for m in mixes}
    seen = {m: np.zeros(len(records), bool) for m in mixes}
    for k, test in enumerate(folds):
        train = np.setdiff1d(np.arange(len(records)), test)
        mean, std = x[train].mean(0), x[train].std(0) + 1e-5
        z = (x - mean) / std
        spk = np.array([f"{r.corpus}:{r.speaker}" for r in records])
        # Training offsets: each training speaker's mean (mean), or mean of x - mu_label (expected).
        mu = class_means(z[train], y[train], n_classes)
        off_mean, off_exp = np.zeros_like(z), np.zeros_like(z)
        for s in np.unique(spk[train]):
            members = train[spk[train] == s]
            off_mean[members] = z[members].mean(0)
            off_exp[members] = (z[members] - mu[y[members]]).mean(0)
        models = {"plain": head(z[train], y[train], n_classes),
                  "mean": head(z[train] - off_mean[train], y[train], n_classes),
                  "expected": head(z[train] - off_exp[train], y[train], n_classes)}
        mu_e = class_means(z[train] - off_exp[train], y[train], n_classes)
        for mix in mixes:
            for session in sessions(records, test, mix, labels):
                session = np.array(session)
                zs, n = z[session], len(session)
                seen[mix][session] = True
                right[("plain", mix)][session] = models["plain"].predict(zs) == y[session]
                shift = zs.mean(0) * n / (n + args.shrink)
                right[("mean", mix)][session] = models["mean"].predict(zs - shift) == y[session]
                shift = expected_offset(models["expected"], zs, mu_e, args.shrink)
                right[("expected", mix)][session] = models["expected"].predict(zs - shift) == y[session]
        print(f"fold {k + 1}/{len(folds)} done ({time.perf_counter() - started:.0f} s)", flush=True)
    corpus = np.array([r.corpus for r in records])
    print(f"\n{len(records)} clips, {args.folds} folds by speaker, seed 0, shrink {args.shrink:g}; WA %")
    print("| mix | variant | " + " | ".join(CORPORA_USED) + " | all |\n|---|---|" + "---|" * (len(CORPORA_USED) + 1))
    for mix in mixes:
        for v in variants:
            cells = [100 * right[(v, mix)][(corpus == c) & seen[mix]].mean() for c in CORPORA_USED]
            cells.append(100 * right[(v, mix)][seen[mix]].mean())
            print(f"| {mix} | {v} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
