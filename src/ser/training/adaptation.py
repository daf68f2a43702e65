"""Session adaptation for a bundle whose head is linear on pooled encoder states: a second head,
trained on states with each training speaker's mean removed, used at prediction time on a
session (a recording's utterances, or files the user says share a speaker) with the session's
mean removed — but only when the plain head's answers in the session are spread (its top
emotion holds under ``below_share`` of the utterances, and there are at least
``min_utterances``), so that a speaker who is angry the whole time stays angry. Chosen by
speaker-grouped CV (``benchmarks/adaptation_cv.py --gates``, docs/results.md "Speaker and
channel adaptation"); applied by :class:`ser.serving.classifier.SessionAdaptation`.

    python -m ser.training.adaptation --corpora ../shared/corpora --bundle src/ser/models/default \
        --below-share 0.4 --min-utterances 10
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

TRAIN_CORPORA = ("ravdess", "crema-d", "emovo", "nemo", "banglaser")


def fit_head(z: np.ndarray, y: np.ndarray, n_classes: int, c: float) -> tuple[np.ndarray, np.ndarray]:
    """(weights (classes, inputs), bias) of a balanced logistic regression; absent classes get
    a bias that keeps them out."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, class_weight="balanced", max_iter=500).fit(z, y)
    weights = np.zeros((n_classes, z.shape[1]), np.float32)
    bias = np.full(n_classes, -30.0, np.float32)
    weights[model.classes_] = model.coef_
    bias[model.classes_] = model.intercept_
    return weights, bias


def speaker_offsets(z: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    """Each row's speaker mean."""
    out = np.zeros_like(z)
    for s in np.unique(speakers):
        out[speakers == s] = z[speakers == s].mean(0)
    return out


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood (a grid: robust, no optimiser)."""
    from ser.common import softmax

    grid = np.exp(np.linspace(np.log(0.3), np.log(5.0), 120))
    nll = [-np.mean(np.log(softmax(logits, t)[np.arange(len(y)), y] + 1e-9)) for t in grid]
    return float(grid[int(np.argmin(nll))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpora", type=Path, required=True)
    ap.add_argument("--bundle", type=Path, required=True, help="the bundle whose config.json gets the head")
    ap.add_argument("--c", type=float, default=0.001)
    ap.add_argument("--shrink", type=float, default=5.0, help="a session of n moves n/(n+shrink) of its mean")
    ap.add_argument("--below-share", type=float, default=0.35,
                    help="adapt only sessions whose plain top emotion holds under this share")
    ap.add_argument("--min-utterances", type=int, default=2, help="adapt only sessions at least this long")
    ap.add_argument("--folds", type=int, default=5, help="speaker folds for the temperature")
    args = ap.parse_args()
    from ser.common import softmax
    from ser.frontends.encoders import EncoderConfig
    from ser.serving.bundle import read_bundle
    from ser.serving.classifier import Scaler
    from ser.training.datasets import scan
    from ser.training.extraction import extract_embeddings
    from ser.training.splits import speaker_folds

    bundle = read_bundle(args.bundle)
    records = [r for name in TRAIN_CORPORA for r in scan(args.corpora / name).records]
    enc = bundle.config["encoder"]
    ext = extract_embeddings(records, bundle.feature_config,
                             EncoderConfig(runtime="onnx", states=tuple(enc["states"])), progress=True)
    records = ext.records
    z = Scaler.from_dict(bundle.config["scaler"]).transform(np.asarray(ext.features, np.float32))
    labels = bundle.labels
    y = np.array([labels.index(r.label) for r in records])
    speakers = np.array([f"{r.corpus}:{r.speaker}" for r in records])
    offsets = speaker_offsets(z, speakers)
    # The temperature: out-of-fold logits of every speaker's clips as one session (shrunk).
    logits = np.zeros((len(z), len(labels)), np.float32)
    for k, test in enumerate(speaker_folds(records, args.folds, seed=0)):
        train = np.setdiff1d(np.arange(len(z)), test)
        w, b = fit_head(z[train] - offsets[train], y[train], len(labels), args.c)
        for s in np.unique(speakers[test]):
            members = test[speakers[test] == s]
            shift = z[members].sum(0) / (len(members) + args.shrink)
            logits[members] = (z[members] - shift) @ w.T + b
        print(f"temperature fold {k + 1}/{args.folds}", flush=True)
    temperature = fit_temperature(logits, y)
    accuracy = float((softmax(logits, temperature).argmax(1) == y).mean())
    w, b = fit_head(z - offsets, y, len(labels), args.c)
    path = args.bundle / "config.json"
    config = json.loads(path.read_text())
    config["session_adaptation"] = {
        "shrink": args.shrink, "below_share": args.below_share,
        "min_utterances": args.min_utterances, "c": args.c,
        "temperature": round(temperature, 4),
        "trained_on": (f"{len(z)} clips of {', '.join(TRAIN_CORPORA)} ({len(np.unique(speakers))} "
                       "speakers), each speaker's mean removed"),
        "out_of_fold_wa": round(accuracy, 4),
        "command": (f"python -m ser.training.adaptation --corpora CORPORA --bundle {args.bundle} "
                    f"--c {args.c} --shrink {args.shrink:g} --below-share {args.below_share:g} "
                    f"--min-utterances {args.min_utterances}"),
        "bias": [round(float(v), 6) for v in b],
        "weights": [[round(float(v), 6) for v in row] for row in w],
    }
    path.write_text(json.dumps(config, indent=1) + "\n")
    print(f"temperature {temperature:.3f}; out-of-fold WA of whole-speaker sessions {100 * accuracy:.1f}%; "
          f"wrote the head into {path}")


if __name__ == "__main__":
    main()
