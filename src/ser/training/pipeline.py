"""``ser train`` and ``ser cv`` end to end: records in, features through the front end, a
split (or folds), a :class:`~ser.training.classifier.TrainedClassifier`, reports, curves and the bundle.
The pieces it uses live in their own modules: splits, front ends, the training loop
(:mod:`ser.training.loop`), the classifier, evaluation and the model card.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ser.common import EMOTIONS
from ser.training.classifier import TrainedClassifier
from ser.common import ConfigError
from ser.training.datasets import Record, load_records, summarise
from ser.training.evaluate import report, summary_table, write_report
from ser.training.extraction import failure_summary
from ser.frontends.features import FeatureConfig
from ser.training.model_card import model_card
from ser.frontends.registry import get_frontend
from ser.training.extraction import extract_inputs
from ser.training.splits import Split, labels_of, random_split, speaker_folds, speaker_split
from ser.training.loop import TrainConfig, resolve_device, validate_config


def save_history(history: dict, out_dir: Path) -> None:
    """history.json and the accuracy/loss curves (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "history.json").write_text(json.dumps(history, indent=2))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(history["loss"]) + 1)
    for ax, key in zip(axes, ("accuracy", "loss")):
        ax.plot(epochs, history[key], label="train")
        ax.plot(epochs, history[f"val_{key}"], label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / "training_history.png", dpi=100)
    plt.close(fig)


def _extract_training_inputs(records, feature_config, cache_dir, workers, progress,
                             frontend="handcrafted", options=None):
    ex = extract_inputs(records, feature_config, frontend, cache_dir, workers, progress,
                        options=options)
    if ex.failures and progress:
        print(failure_summary(ex.failures))
    return ex


def _augmented(records, idx, copies, feature_config, cache_dir, workers, progress, frontend,
               options=None, kind="classic"):
    """Waveform-augmented copies of the training clips (cached like clean features), their
    labels and their corpora (a copy whose speech the augmentation hid is left out)."""
    xs, ys, corpora = [], [], []
    prefix = "aug" if kind == "classic" else "cond"
    for k in range(1, copies + 1):
        ex = extract_inputs([records[i] for i in idx], feature_config, frontend, cache_dir, workers,
                            progress, variant=f"{prefix}{k}", desc=f"augment {k}", options=options)
        xs.append(ex.features)
        ys.append(labels_of(ex.records))
        corpora += [r.corpus for r in ex.records]
    return xs, ys, corpora


def run_experiment(
    records: Sequence[Record],
    features: np.ndarray,
    split: Split,
    config: TrainConfig,
    feature_config,
    *,
    cache_dir=None,
    workers: int | None = None,
    progress: bool = True,
    time_budget_s: float | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
) -> dict:
    """Train on split.train, early-stop and calibrate on split.val, report on split.test."""
    y = labels_of(records)
    x_train, y_train = features[split.train], y[split.train]
    train_corpora = [records[i].corpus for i in split.train]
    if config.augment_copies:
        xs, ys, corpora = _augmented(records, split.train, config.augment_copies, feature_config,
                                     cache_dir, workers, progress, config.frontend, config.encoder,
                                     config.augment_kind)
        x_train = np.concatenate([x_train, *xs])
        y_train = np.concatenate([y_train, *ys])
        train_corpora += corpora
    x_val, y_val = features[split.val], y[split.val]
    weights = None
    if config.balance_corpora:
        weights = corpus_weights(train_corpora, config.balance_corpora)
    if config.augment_weight != 1.0:
        copy = np.arange(len(y_train)) >= len(split.train)
        weights = np.ones(len(y_train)) if weights is None else weights
        weights = weights * np.where(copy, config.augment_weight, 1.0)
        weights *= len(weights) / weights.sum()
    clf = TrainedClassifier.fit(x_train, y_train, x_val, y_val, config, progress=progress,
                                time_budget_s=time_budget_s, checkpoint_dir=checkpoint_dir,
                                resume=resume, sample_weight=weights)
    out = {"classifier": clf,
           "val": report([records[i] for i in split.val], y_val, clf.predict_proba(x_val))}
    if len(split.test):
        x_test, test_records = features[split.test], [records[i] for i in split.test]
        out["test"] = report(test_records, y[split.test], clf.predict_proba(x_test))
        out["test_uncalibrated"] = report(test_records, y[split.test],
                                          clf.predict_proba(x_test, calibrated=False))
    return out


def corpus_weights(corpora: list[str], power: float = 1.0) -> np.ndarray:
    """Per-clip weights (clips in its corpus) ** -power, scaled to mean 1: with power 1 every
    corpus has the same total weight."""
    _, index, counts = np.unique(corpora, return_inverse=True, return_counts=True)
    w = counts[index].astype(np.float64) ** -power
    return w * len(w) / w.sum()


def _make_split(records, protocol: str, test_fraction: float | None, seed: int) -> Split:
    if protocol == "speaker":
        split = speaker_split(records, test_fraction=0.15 if test_fraction is None else test_fraction,
                              seed=seed)
    elif protocol == "random":
        split = random_split(records, test_fraction=0.2 if test_fraction is None else test_fraction,
                             seed=seed)
    else:
        raise ConfigError(f"protocol must be 'speaker' or 'random', not {protocol!r}")
    if not len(split.train) or not len(split.val):
        raise ConfigError("too few speakers to make train and validation sets")
    return split


def _cv_metrics(cv_report: str | Path | None) -> dict:
    """A ``cv.json`` of the same settings, as the bundle reports it."""
    if not cv_report:
        return {}
    try:
        cv = json.loads(Path(cv_report).read_text())
        return {"cross_validation": {"folds": len(cv["folds"]), "summary": cv["summary"],
                                     "table": cv["table"], "seed": cv["config"]["seed"]}}
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{cv_report}: not a cv.json from `ser cv` ({exc})") from None


def train_pipeline(
    data: Sequence[str | Path],
    out_dir: str | Path,
    *,
    config: TrainConfig | None = None,
    feature_config=None,
    protocol: str = "speaker",
    test_fraction: float | None = None,
    cache_dir=None,
    workers: int | None = None,
    progress: bool = True,
    time_budget_s: float | None = None,
    cv_report: str | Path | None = None,
    resume: bool = False,
) -> dict:
    """``ser train``: corpora in, a model bundle plus history, curves and reports out.

    ``cv_report`` (a ``cv.json`` from ``ser cv`` with the same settings) is attached to the
    bundle's metrics and card: the way to report a model trained on every speaker."""
    config = config or TrainConfig()
    validate_config(config)
    feature_config = feature_config or FeatureConfig()
    out_dir = Path(out_dir)
    records, skipped = load_records(data)
    ex = _extract_training_inputs(records, feature_config, cache_dir, workers, progress,
                                  config.frontend, config.encoder)
    records = ex.records
    split = _make_split(records, protocol, test_fraction, config.seed)
    res = run_experiment(records, ex.features, split, config, feature_config, cache_dir=cache_dir,
                         workers=workers, progress=progress, time_budget_s=time_budget_s,
                         checkpoint_dir=out_dir / "checkpoint", resume=resume)
    clf = res["classifier"]
    save_history(clf.history, out_dir)
    split_info = split.describe(records)
    metrics = {"protocol": protocol, "seed": config.seed, "validation": res["val"],
               **_cv_metrics(cv_report)}
    if "test" in res:
        metrics["test"] = res["test"]
        metrics["test_uncalibrated_ece"] = res["test_uncalibrated"]["overall"]["ece"]
        write_report(res["test"], out_dir / "test_report", extra={"split": split_info})
    training = {
        **config.to_dict(), "arch": clf.arch, "best_epoch": clf.best_epoch,
        "epochs_run": len(clf.history["loss"]), "train_seconds": round(clf.train_seconds, 1),
        "parameters": clf.parameters, "split": split_info,
        "device": resolve_device(config.device) if config.optimizer != "logistic" else "cpu",
    }
    data_summary = {**summarise(records), "skipped": skipped,
                    "unusable_clips": [[r.path.rsplit("/", 1)[-1], why] for r, why in ex.failures]}
    input_shape = list(ex.features.shape[1:])
    frontend = get_frontend(config.frontend, config.encoder)
    card = model_card(clf.arch, data_summary, metrics, training, clf.temperature, config.frontend,
                      input_shape=input_shape, encoder=frontend.bundle_config(),
                      feature_config=feature_config.to_dict())
    info = clf.save(out_dir / "bundle", feature_config=feature_config, frontend=config.frontend,
                    input_shape=input_shape, metrics=_compact_metrics(metrics), data=data_summary,
                    training=training, card=card,
                    encoder=frontend.bundle_config(), extra_files=frontend.bundle_files())
    summary = {"bundle": str(info.root), "metrics": _compact_metrics(metrics), "training": training}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    if progress and "test" in res:
        print(f"test ({protocol} protocol, seed {config.seed}):\n{summary_table(res['test'])}")
    return summary


def _compact_metrics(metrics: dict) -> dict:
    """Headline numbers only (no confusion matrices), for config.json and summaries."""
    def pick(rep):
        keys = ("n", "wa", "ua", "macro_f1", "loss", "ece")
        return {
            "overall": {k: rep["overall"][k] for k in keys},
            "per_corpus": {c: {k: m[k] for k in keys} for c, m in rep["per_corpus"].items()},
        }
    out = {"protocol": metrics["protocol"], "seed": metrics["seed"],
           "validation": pick(metrics["validation"])}
    if "cross_validation" in metrics:
        out["cross_validation"] = metrics["cross_validation"]
    if "test" in metrics:
        out["test"] = pick(metrics["test"])
        out["test_uncalibrated_ece"] = metrics["test_uncalibrated_ece"]
    return out


def cross_validate(
    data: Sequence[str | Path],
    folds: int,
    *,
    config: TrainConfig | None = None,
    feature_config=None,
    cache_dir=None,
    workers: int | None = None,
    progress: bool = True,
    test_conditions: bool = False,
) -> dict:
    """``ser cv``: k folds grouped by speaker. Each fold is tested once; validation speakers
    (for early stopping and temperature) come from the remaining folds' speakers.

    ``test_conditions``: each held-out clip is also scored once under one of the robustness
    benchmark's recording conditions (drawn per clip, :func:`ser.training.augment.benchmark_condition`;
    never the same draw as a training copy): pooled accuracy and "no speech" refusals per
    condition, next to the same clips clean, in ``result["conditions"]`` and the table."""
    config = config or TrainConfig()
    validate_config(config)
    feature_config = feature_config or FeatureConfig()
    if folds < 2:
        raise ConfigError("at least 2 folds are needed")
    records, _ = load_records(data)
    ex = _extract_training_inputs(records, feature_config, cache_dir, workers, progress,
                                  config.frontend, config.encoder)
    records = ex.records
    test_folds = speaker_folds(records, folds, seed=config.seed)
    corrupted = _corrupted_inputs(records, feature_config, config, cache_dir, workers, progress) \
        if test_conditions else None
    tally = ConditionTally()
    per_fold, histories = [], []
    confusion = np.zeros((len(EMOTIONS), len(EMOTIONS)), dtype=np.int64)
    confusion_by_corpus: dict[str, np.ndarray] = {}
    for k, test_idx in enumerate(test_folds):
        rest = np.setdiff1d(np.arange(len(records)), test_idx)
        inner = speaker_split([records[i] for i in rest], val_fraction=0.12, test_fraction=0.0,
                              seed=config.seed + k)
        # The fold's validation speakers were drawn with seed + k: record that one.
        split = Split(rest[inner.train], rest[inner.val], test_idx, "speaker", config.seed + k)
        res = run_experiment(records, ex.features, split, config, feature_config,
                             cache_dir=cache_dir, workers=workers, progress=progress)
        per_fold.append(_compact_metrics({"protocol": "speaker", "seed": config.seed,
                                          "validation": res["val"], "test": res["test"],
                                          "test_uncalibrated_ece": res["test_uncalibrated"]["overall"]["ece"]}))
        clf = res["classifier"]
        if corrupted is not None:
            tally.add(clf, ex.features, records, test_idx, *corrupted)
        histories.append({**clf.history, "best_epoch": clf.best_epoch,
                          "train_seconds": clf.train_seconds})
        confusion += np.asarray(res["test"]["overall"]["confusion"])
        for corpus, m in res["test"]["per_corpus"].items():
            confusion_by_corpus[corpus] = (confusion_by_corpus.get(corpus, 0)
                                           + np.asarray(m["confusion"]))
        if progress:
            m = res["test"]["overall"]
            print(f"fold {k + 1}/{folds}: WA {100 * m['wa']:.1f}%  UA {100 * m['ua']:.1f}%")
    summary = _cv_summary(per_fold)
    table = _cv_table(summary, folds, config)
    conditions = tally.result() if corrupted is not None else None
    if conditions:
        table += "\n\n" + conditions_table(conditions)
    return {"folds": per_fold, "summary": summary, "table": table, "conditions": conditions,
            "config": config.to_dict(), "feature_config": feature_config.to_dict(),
            "histories": histories, "confusion": confusion.tolist(),
            "confusion_per_corpus": {c: m.tolist() for c, m in confusion_by_corpus.items()}}


def _corrupted_inputs(records, feature_config, config, cache_dir, workers, progress):
    """Every clip once under its benchmark condition: (inputs, row of each record or -1 when
    the corrupted copy has no speech, condition of each record)."""
    from ser.training.augment import benchmark_condition
    from ser.common import sha256_file

    cx = extract_inputs(records, feature_config, config.frontend, cache_dir, workers, progress,
                        variant="bench", desc="held-out conditions", options=config.encoder)
    row = {r.path: i for i, r in enumerate(cx.records)}
    rows = np.array([row.get(r.path, -1) for r in records])
    names = [benchmark_condition(sha256_file(Path(r.path))) for r in records]
    return cx.features, rows, names


class ConditionTally:
    """Held-out clips scored clean and under their condition, pooled over folds."""

    def __init__(self):
        self.counts: dict[tuple[str, str], np.ndarray] = {}  # (condition, corpus) -> [n, refused, right, right clean]

    def add(self, clf, clean, records, test_idx, corrupted, rows, names) -> None:
        y = labels_of(records)
        have = [i for i in test_idx if rows[i] >= 0]
        right_clean = clf.predict_proba(clean[test_idx]).argmax(1) == y[test_idx]
        right = dict(zip(have, clf.predict_proba(corrupted[rows[have]]).argmax(1) == y[have])) if have else {}
        for i, ok_clean in zip(test_idx, right_clean):
            key = (names[i], records[i].corpus)
            c = self.counts.setdefault(key, np.zeros(4, np.int64))
            c += [1, rows[i] < 0, bool(right.get(i, False)), bool(ok_clean)]

    def result(self) -> dict:
        """{condition: {"n", "refused", "wa" (over the clips analysed), "wa_clean" (same clips),
        "per_corpus": {corpus: same}}}, plus "all"."""
        def entry(c):
            n, refused, right, clean = (int(v) for v in c)
            return {"n": n, "refused": refused / max(n, 1), "wa": right / max(n - refused, 1),
                    "wa_clean": clean / max(n, 1)}
        out: dict[str, dict] = {}
        for name in sorted({k[0] for k in self.counts}) + ["all"]:
            keys = [k for k in self.counts if name in ("all", k[0])]
            corpora = sorted({k[1] for k in keys})
            total = sum(self.counts[k] for k in keys)
            out[name] = {**entry(total), "per_corpus": {
                corpus: entry(sum(self.counts[k] for k in keys if k[1] == corpus)) for corpus in corpora}}
        return out


def conditions_table(conditions: dict) -> str:
    corpora = sorted(conditions["all"]["per_corpus"])
    lines = ["Held-out clips under recording conditions (one condition per clip, pooled over "
             "folds): accuracy over the clips analysed, clean accuracy of the same clips, refused "
             "as no speech",
             "| condition | clips | WA | clean WA | refused | " + " | ".join(corpora) + " |",
             "|---" * (5 + len(corpora)) + "|"]
    for name, m in conditions.items():
        cells = [f"{100 * m['per_corpus'][c]['wa']:.1f}" if c in m["per_corpus"] else "" for c in corpora]
        lines.append(f"| {name} | {m['n']} | {100 * m['wa']:.1f}% | {100 * m['wa_clean']:.1f}% | "
                     f"{100 * m['refused']:.1f}% | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _mean_std(values) -> dict:
    """Mean and population standard deviation over folds (as every table here reports)."""
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def _cv_summary(per_fold: list[dict]) -> dict:
    summary: dict[str, dict] = {}
    groups = ["overall"] + sorted({c for f in per_fold for c in f["test"]["per_corpus"]})
    for group in groups:
        vals = [f["test"]["overall"] if group == "overall" else f["test"]["per_corpus"].get(group)
                for f in per_fold]
        vals = [v for v in vals if v]
        summary[group] = {key: _mean_std([v[key] for v in vals]) for key in ("wa", "ua", "macro_f1")}
    summary["calibration"] = {
        "ece_before": _mean_std([f["test_uncalibrated_ece"] for f in per_fold]),
        "ece_after": _mean_std([f["test"]["overall"]["ece"] for f in per_fold])}
    return summary


def _cv_table(summary: dict, folds: int, config: TrainConfig) -> str:
    lines = [f"{folds}-fold cross-validation grouped by speaker (seed {config.seed}, "
             f"arch {config.arch['name']}; mean ± population std over folds)",
             "| data | WA | UA | macro-F1 |", "|---|---|---|---|"]
    for group, s in summary.items():
        if group != "calibration":
            lines.append("| " + group + " | " + " | ".join(
                f"{100 * s[k]['mean']:.1f} ± {100 * s[k]['std']:.1f}%" for k in ("wa", "ua", "macro_f1")) + " |")
    cal = summary["calibration"]
    lines.append(f"\nExpected calibration error on the test folds: {cal['ece_before']['mean']:.3f} "
                 f"before temperature scaling, {cal['ece_after']['mean']:.3f} after (temperature "
                 "fitted on each fold's validation speakers).")
    return "\n".join(lines)
