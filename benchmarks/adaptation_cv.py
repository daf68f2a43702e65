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
true-label offsets); ``invariant-R`` (``--emotion-dims``: the mean with the R directions along
which emotion moves a speaker's states projected out); ``gated-T[-nM]`` (``--gates``,
``--gate-min``: ``mean`` only for sessions of at least M whose plain answers' top emotion holds
under T of them — shipped: T 0.4, M 10). ``--small`` adds sessions of 5 random clips (10 draws
per speaker); ``--reference K`` instead scores an offset from K of the speaker's neutral clips.
Accuracy (WA) per corpus and mix.

    python benchmarks/adaptation_cv.py [--corpora ../shared/corpora] [--shrink 5]
    python benchmarks/adaptation_cv.py --variants plain mean --gates 0.4 --gate-min 1 6 10 --small
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


def _gated(t: float, m: int) -> str:
    return f"gated-{t:g}" + (f"-n{m}" if m > 1 else "")


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
        elif mix == "small":  # a short recording: 5 of his clips at random, 10 draws
            for _ in range(10):
                out.append(list(rng.choice(members, min(5, len(members)), replace=False)))
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


def reference_cv(records, x, y, labels, folds, counts, shrink):
    """The offset from reference speech the user marks neutral: K of the test speaker's neutral
    clips (left out of the scoring), mean minus the training neutral mean with offsets removed,
    shrunk K/(K+shrink); the head trained with true-label offsets. Scored on every other clip of
    speakers with more than K neutral clips, beside the plain head on the same clips."""
    n_classes = len(labels)
    neutral = labels.index("neutral")
    spk = np.array([f"{r.corpus}:{r.speaker}" for r in records])
    rng = np.random.default_rng(0)
    right = {(v, k): np.zeros(len(records)) for v in ("plain", "reference") for k in counts}
    scored = {k: np.zeros(len(records), bool) for k in counts}
    for f, test in enumerate(folds):
        train = np.setdiff1d(np.arange(len(records)), test)
        mean, std = x[train].mean(0), x[train].std(0) + 1e-5
        z = (x - mean) / std
        mu = class_means(z[train], y[train], n_classes)
        off = np.zeros_like(z)
        for s in np.unique(spk[train]):
            members = train[spk[train] == s]
            off[members] = (z[members] - mu[y[members]]).mean(0)
        plain = head(z[train], y[train], n_classes)
        adapted = head(z[train] - off[train], y[train], n_classes)
        mu_neutral = class_means(z[train] - off[train], y[train], n_classes)[neutral]
        for s in np.unique(spk[test]):
            members = test[spk[test] == s]
            calm = rng.permutation(members[y[members] == neutral])
            for k in counts:
                if len(calm) <= k:
                    continue
                ref, rest = calm[:k], np.setdiff1d(members, calm[:k])
                shift = (z[ref].mean(0) - mu_neutral) * k / (k + shrink)
                scored[k][rest] = True
                right[("plain", k)][rest] = plain.predict(z[rest]) == y[rest]
                right[("reference", k)][rest] = adapted.predict(z[rest] - shift) == y[rest]
        print(f"fold {f + 1}/{len(folds)} done", flush=True)
    corpus = np.array([r.corpus for r in records])
    print(f"\n{len(records)} clips, {len(folds)} folds by speaker, seed 0, shrink {shrink:g}; WA % "
          "of the clips that are not references")
    print("| reference clips | variant | " + " | ".join(CORPORA_USED) + " | all |\n|---|---|"
          + "---|" * (len(CORPORA_USED) + 1))
    for k in counts:
        for v in ("plain", "reference"):
            cells = [100 * right[(v, k)][(corpus == c) & scored[k]].mean() if np.any((corpus == c) & scored[k])
                     else float("nan") for c in CORPORA_USED]
            cells.append(100 * right[(v, k)][scored[k]].mean())
            print(f"| {k} | {v} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpora", type=__import__("pathlib").Path, default=CORPORA)
    ap.add_argument("--shrink", type=float, default=5.0)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--emotion-dims", type=int, nargs="*", default=[],
                    help="also the 'invariant' variant with these numbers of emotion directions")
    ap.add_argument("--variants", nargs="+", default=["plain", "mean", "expected"])
    ap.add_argument("--gates", type=float, nargs="*", default=[],
                    help="also 'gated-T': mean removal only for sessions whose plain answers' top "
                         "emotion holds under this share (needs plain and mean)")
    ap.add_argument("--gate-min", type=int, nargs="+", default=[1],
                    help="gated variants adapt only sessions of at least this many utterances")
    ap.add_argument("--small", action="store_true",
                    help="also 'small' sessions: 5 of a speaker's clips at random, 10 draws")
    ap.add_argument("--reference", type=int, nargs="*", default=[],
                    help="instead: the offset from this many of the speaker's neutral clips")
    args = ap.parse_args()
    from ser.training.splits import speaker_folds

    started = time.perf_counter()
    records, x, labels = load(args.corpora)
    y = np.array([labels.index(r.label) for r in records])
    n_classes = len(labels)
    folds = speaker_folds(records, args.folds, seed=0)
    if args.reference:
        reference_cv(records, x, y, labels, folds, args.reference, args.shrink)
        return
    mixes = ("balanced", "skewed", "single-emotion") + (("small",) if args.small else ())
    variants = (tuple(args.variants) + tuple(f"invariant-{r}" for r in args.emotion_dims)
                + tuple(_gated(t, m) for t in args.gates for m in args.gate_min))
    right = {(v, m): np.zeros(len(records)) for v in variants for m in mixes}
    seen = {m: np.zeros(len(records)) for m in mixes}
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
        fits = {"plain": lambda: head(z[train], y[train], n_classes),
                "mean": lambda: head(z[train] - off_mean[train], y[train], n_classes),
                "expected": lambda: head(z[train] - off_exp[train], y[train], n_classes)}
        models = {v: fits[v]() for v in args.variants}
        # invariant-r: the offset is the speaker's mean with the r directions along which
        # emotion moves a speaker's states (PCA of his emotion-class means minus his mean)
        # projected out, so a session that holds one emotion keeps it.
        keep = {}
        for r in args.emotion_dims:
            cells = []
            for s in np.unique(spk[train]):
                members = train[spk[train] == s]
                m = z[members].mean(0)
                cells += [z[members[y[members] == c]].mean(0) - m for c in np.unique(y[members])]
            _, _, vt = np.linalg.svd(np.asarray(cells), full_matrices=False)
            basis = vt[:r]
            keep[r] = basis
            off = off_mean[train] - (off_mean[train] @ basis.T) @ basis
            models[f"invariant-{r}"] = head(z[train] - off, y[train], n_classes)
        mu_e = class_means(z[train] - off_exp[train], y[train], n_classes)
        for mix in mixes:
            for session in sessions(records, test, mix, labels):
                session = np.array(session)
                zs, n = z[session], len(session)
                np.add.at(seen[mix], session, 1)  # a clip may be in several draws ("small")
                answers = {}
                if "plain" in models:
                    answers["plain"] = models["plain"].predict(zs)
                shift = zs.mean(0) * n / (n + args.shrink)
                if "mean" in models:
                    answers["mean"] = models["mean"].predict(zs - shift)
                for t in args.gates:  # adapt only sessions whose plain answers are spread
                    top = np.bincount(answers["plain"]).max() / n
                    for m in args.gate_min:
                        answers[_gated(t, m)] = answers["mean" if top < t and n >= m else "plain"]
                for r, basis in keep.items():
                    inv = shift - (shift @ basis.T) @ basis
                    answers[f"invariant-{r}"] = models[f"invariant-{r}"].predict(zs - inv)
                if "expected" in models:
                    shift = expected_offset(models["expected"], zs, mu_e, args.shrink)
                    answers["expected"] = models["expected"].predict(zs - shift)
                for v, a in answers.items():
                    np.add.at(right[(v, mix)], session, a == y[session])
        print(f"fold {k + 1}/{len(folds)} done ({time.perf_counter() - started:.0f} s)", flush=True)
    corpus = np.array([r.corpus for r in records])
    print(f"\n{len(records)} clips, {args.folds} folds by speaker, seed 0, shrink {args.shrink:g}; WA %")
    print("| mix | variant | " + " | ".join(CORPORA_USED) + " | all |\n|---|---|" + "---|" * (len(CORPORA_USED) + 1))
    for mix in mixes:
        for v in variants:
            cells = [100 * right[(v, mix)][corpus == c].sum() / seen[mix][corpus == c].sum()
                     for c in CORPORA_USED]
            cells.append(100 * right[(v, mix)].sum() / seen[mix].sum())
            print(f"| {mix} | {v} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
