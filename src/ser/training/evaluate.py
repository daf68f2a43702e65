"""Evaluation: WA, UA, macro-F1, loss, per-class precision/recall, confusion matrices (counts and
row-normalised, PNG), calibration error, broken down per corpus; a JSON report beside the images.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ser.common import EMOTIONS
from ser.common import ConfigError
from ser.training.datasets import Record
from ser.training.splits import labels_of


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """ECE with equal-width confidence bins (top-label)."""
    conf = probs.max(1)
    correct = probs.argmax(1) == y
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (conf > lo) & (conf <= hi)
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def metrics(y: np.ndarray, probs: np.ndarray) -> dict:
    """WA (accuracy), UA (mean recall over classes present), macro-F1, loss, per class."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    pred = probs.argmax(1)
    present = sorted(set(y.tolist()))
    labels = list(range(len(EMOTIONS)))
    precision, recall, _, support = precision_recall_fscore_support(
        y, pred, labels=labels, zero_division=0
    )
    loss = float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean())
    return {
        "n": int(len(y)),
        "wa": float((pred == y).mean()),
        "ua": float(np.mean([recall[c] for c in present])),
        "macro_f1": float(f1_score(y, pred, labels=present, average="macro", zero_division=0)),
        "loss": loss,
        "ece": expected_calibration_error(probs, y),
        "per_class": {
            EMOTIONS[c]: {"precision": float(precision[c]), "recall": float(recall[c]),
                          "support": int(support[c])}
            for c in labels if support[c] or (pred == c).any()
        },
        "confusion": confusion_matrix(y, pred, labels=labels).tolist(),
    }


def report(records: Sequence[Record], y: np.ndarray, probs: np.ndarray) -> dict:
    """Overall metrics and the same per corpus."""
    out = {"overall": metrics(y, probs), "per_corpus": {}}
    corpora = np.array([r.corpus for r in records])
    for corpus in sorted(set(corpora.tolist())):
        mask = corpora == corpus
        out["per_corpus"][corpus] = metrics(y[mask], probs[mask])
    return out


def plot_confusion(confusion: list[list[int]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(confusion, dtype=np.float64)
    keep = [i for i in range(len(EMOTIONS)) if cm[i].sum() or cm[:, i].sum()]
    cm = cm[np.ix_(keep, keep)]
    names = [EMOTIONS[i] for i in keep]
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, mat, label in ((axes[0], cm, "counts"), (axes[1], norm, "row-normalised")):
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(names)):
            for j in range(len(names)):
                text = f"{int(mat[i, j])}" if label == "counts" else f"{mat[i, j]:.2f}"
                ax.text(j, i, text, ha="center", va="center",
                        color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{title} ({label})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def evaluate_served(recognizer, records: Sequence[Record], workers: int | None = None,
                    progress: bool = True) -> dict:
    """``ser evaluate``: every file through the served path (``predict_many``: decoding, VAD,
    clip or utterances, calibrated probabilities), scored per file against its label.

    The bundle records its training and validation speakers; the figures for the evaluated
    files from those voices and from unseen voices are reported apart (``speakers``), since a
    model scores higher on voices it was trained on."""
    paths = [r.path for r in records]
    kept, probs, no_speech, errors = [], [], 0, 0
    for record, result in zip(records, recognizer.predict_many(paths, workers=workers,
                                                               progress=progress)):
        if isinstance(result, Exception):
            errors += 1
        elif not result.has_speech:
            no_speech += 1
        else:
            kept.append(record)
            probs.append([result.probabilities[label] for label in EMOTIONS])
    if not kept:
        raise ConfigError("no file could be analysed")
    probs_arr, y = np.asarray(probs, np.float32), labels_of(kept)
    rep = report(kept, y, probs_arr)
    rep["not_analysed"] = {"no_speech": no_speech, "errors": errors}
    split = recognizer.bundle.config.get("training", {}).get("split", {})
    seen = set(split.get("train", {}).get("speakers", [])) | set(split.get("val", {}).get("speakers", []))
    if seen:
        mask = np.array([r.speaker in seen for r in kept])
        rep["speakers"] = {}
        for name, part in (("speakers the model was trained on", mask),
                           ("speakers the model never heard", ~mask)):
            if part.any():
                rep["speakers"][name] = report([r for r, m in zip(kept, part) if m], y[part],
                                               probs_arr[part])
    return rep


def write_report(rep: dict, out_dir: Path, extra: dict | None = None) -> Path:
    """report.json plus confusion_matrix[_<corpus>].png in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_confusion(rep["overall"]["confusion"], out_dir / "confusion_matrix.png", "all corpora")
    for corpus, m in rep["per_corpus"].items():
        plot_confusion(m["confusion"], out_dir / f"confusion_matrix_{corpus}.png", corpus)
    path = out_dir / "report.json"
    path.write_text(json.dumps({**(extra or {}), **rep}, indent=2))
    return path


def summary_table(rep: dict) -> str:
    rows = [("all", rep["overall"])] + list(rep["per_corpus"].items())
    lines = ["| data | n | WA | UA | macro-F1 | loss | ECE |", "|---|---|---|---|---|---|---|"]
    for name, m in rows:
        lines.append(
            f"| {name} | {m['n']} | {100 * m['wa']:.1f}% | {100 * m['ua']:.1f}% | "
            f"{100 * m['macro_f1']:.1f}% | {m['loss']:.3f} | {m['ece']:.3f} |"
        )
    return "\n".join(lines)
