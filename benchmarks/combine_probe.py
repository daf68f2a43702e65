"""Does combining the Whisper-base embedding with the hand-made features help? A linear probe
(logistic regression, C=0.01, balanced classes) under 5-fold cross-validation grouped by
speaker (seed 0), per corpus, on ../shared/corpora. Uses the feature caches.

    python benchmarks/combine_probe.py
"""

from __future__ import annotations


import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ser.training.extraction import extract_embeddings
from ser.training.extraction import extract
from ser.frontends.features import FeatureConfig
from ser.training.datasets import load_records
from ser.training.splits import labels_of, speaker_folds
from common import CORPORA



def pooled_handcrafted(h: np.ndarray) -> np.ndarray:
    """Mean and std over the frames that carry sound (log-mel energy within 40 dB of the max)."""
    energy = h[:, :, 92:220].mean(2)
    w = (energy > energy.max(1, keepdims=True) - 40)[:, :, None].astype(np.float32)
    n = w.sum(1)
    mu = (h * w).sum(1) / n
    sd = np.sqrt(((h - mu[:, None]) ** 2 * w).sum(1) / n)
    return np.concatenate([mu, sd], 1)


def main() -> None:
    records, _ = load_records([CORPORA])
    config = FeatureConfig()
    emb = extract_embeddings(records, config, progress=False)
    hand = extract(records, config, progress=False)
    assert [r.path for r in emb.records] == [r.path for r in hand.records]
    recs, y = emb.records, labels_of(emb.records)
    corpus = np.array([r.corpus for r in recs])
    folds = speaker_folds(recs, 5, seed=0)
    inputs = {
        "hand-made features (pooled)": pooled_handcrafted(hand.features),
        "Whisper-base embedding": emb.features,
        "both, concatenated": np.concatenate([emb.features, pooled_handcrafted(hand.features)], 1),
    }
    print("Linear probe, 5-fold CV grouped by speaker (seed 0), WA mean ± std over folds")
    print("| input | all | crema-d | emovo | ravdess |\n|---|---|---|---|---|")
    for name, x in inputs.items():
        scores: dict[str, list[float]] = {k: [] for k in ("all", "crema-d", "emovo", "ravdess")}
        for test in folds:
            train = np.setdiff1d(np.arange(len(recs)), test)
            scaler = StandardScaler().fit(x[train])
            clf = LogisticRegression(max_iter=2000, C=0.01, class_weight="balanced")
            clf.fit(scaler.transform(x[train]), y[train])
            pred = clf.predict(scaler.transform(x[test]))
            scores["all"].append((pred == y[test]).mean())
            for c in ("crema-d", "emovo", "ravdess"):
                mask = corpus[test] == c
                if mask.any():  # a fold may hold no speaker of a small corpus
                    scores[c].append((pred[mask] == y[test][mask]).mean())
        print(f"| {name} | " + " | ".join(
            f"{100 * np.mean(v):.1f} ± {100 * np.std(v):.1f}%" for v in scores.values()) + " |")


if __name__ == "__main__":
    main()
