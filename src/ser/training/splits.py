"""How clips are divided for training and evaluation.

Whole speakers go to train, validation or test — never two of them — unless
``protocol="random"``, the reference's stratified file-level split, kept for comparison only.
"""

from __future__ import annotations

from dataclasses import dataclass
import zlib
from typing import Sequence

import numpy as np

from ser.common import EMOTIONS, ConfigError
from ser.training.datasets import Record

LABEL_INDEX = {label: i for i, label in enumerate(EMOTIONS)}


@dataclass
class Split:
    train: np.ndarray  # indices
    val: np.ndarray
    test: np.ndarray
    protocol: str
    seed: int

    def describe(self, records: Sequence[Record]) -> dict:
        out = {"protocol": self.protocol, "seed": self.seed}
        for name in ("train", "val", "test"):
            idx = getattr(self, name)
            out[name] = {
                "files": int(len(idx)),
                "speakers": sorted({records[i].speaker for i in idx}),
            }
        return out


def labels_of(records: Sequence[Record]) -> np.ndarray:
    return np.array([LABEL_INDEX[r.label] for r in records], dtype=np.int64)


def _assign_speakers(records, val_fraction, test_fraction, seed, min_train) -> dict[str, list[int]]:
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for corpus in sorted({r.corpus for r in records}):
        speakers = sorted({r.speaker for r in records if r.corpus == corpus})
        rng.shuffle(speakers)
        n = len(speakers)
        n_test = max(1, round(n * test_fraction)) if n >= 3 and test_fraction > 0 else 0
        # A validation speaker only where ``min_train`` stay for training: taking one of TESS's
        # two voices left validation dominated by a voice no training clip resembled (the
        # reference LSTM early-stopped at epoch 2) and trained that corpus on one voice.
        n_val = max(1, round(n * val_fraction)) if n - n_test > min_train and val_fraction > 0 else 0
        chosen = {s: "test" for s in speakers[:n_test]}
        chosen.update({s: "val" for s in speakers[n_test : n_test + n_val]})
        for i, r in enumerate(records):
            if r.corpus == corpus:
                parts[chosen.get(r.speaker, "train")].append(i)
    return parts


def speaker_split(
    records: Sequence[Record], val_fraction: float = 0.1, test_fraction: float = 0.15, seed: int = 0
) -> Split:
    """Whole speakers to train/val/test, drawn per corpus so every corpus is in every part."""
    parts = _assign_speakers(records, val_fraction, test_fraction, seed, min_train=2)
    if val_fraction > 0 and not parts["val"]:  # only tiny corpora: take validation anyway
        parts = _assign_speakers(records, val_fraction, test_fraction, seed, min_train=1)
    return Split(*(np.array(sorted(parts[k]), dtype=np.int64) for k in ("train", "val", "test")),
                 protocol="speaker", seed=seed)


def random_split(
    records: Sequence[Record], val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0
) -> Split:
    """The reference protocol: stratified file-level split (voices shared across parts)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(records))
    y = labels_of(records)
    n_classes = len(set(y.tolist()))
    # Stratification needs at least one clip per class in each part.
    n_test = max(n_classes, round(len(idx) * test_fraction))
    n_val = max(n_classes, round(len(idx) * val_fraction))
    rest, test = train_test_split(idx, test_size=n_test, stratify=y, random_state=seed)
    train, val = train_test_split(rest, test_size=n_val, stratify=y[rest], random_state=seed)
    return Split(np.sort(train), np.sort(val), np.sort(test), protocol="random", seed=seed)


def speaker_folds(records: Sequence[Record], k: int, seed: int = 0) -> list[np.ndarray]:
    """k groups of test indices; each corpus's speakers are spread across the folds."""
    n_speakers = len({r.speaker for r in records})
    if k < 2 or k > n_speakers:
        raise ConfigError(f"cross-validation by speaker needs 2 to {n_speakers} folds here (one "
                         f"per speaker at most; the data has {n_speakers} speakers), not {k}")
    fold_of: dict[str, int] = {}
    for corpus in sorted({r.corpus for r in records}):
        # One generator per corpus (seeded by the seed and the corpus's name): a corpus's folds
        # do not change when other corpora join the data, so rows with and without a corpus
        # compare the others on the same folds.
        rng = np.random.default_rng([seed, zlib.crc32(corpus.encode())])
        speakers = sorted({r.speaker for r in records if r.corpus == corpus})
        rng.shuffle(speakers)
        offset = int(rng.integers(k))
        for j, s in enumerate(speakers):
            fold_of[s] = (j + offset) % k
    folds = [np.array([i for i, r in enumerate(records) if fold_of[r.speaker] == f], dtype=np.int64)
             for f in range(k)]
    if any(len(f) == 0 for f in folds):  # few speakers spread over several corpora
        raise ConfigError(f"cannot fill {k} folds with whole speakers from these corpora; "
                         "pass fewer --folds")
    return folds
