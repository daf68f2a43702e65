"""Training: speaker-grouped (default) or random splits, scaler, class-weighted loss, early
stopping, feature masking, optional waveform augmentation, and the saved history and curves.

Whole speakers go to train, validation or test — never two of them — unless
``protocol="random"``, the reference's stratified file-level split, kept for comparison only.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from . import EMOTIONS
from .architectures import full_arch
from .classifier import Scaler, TrainedClassifier  # noqa: F401  (Scaler re-exported)
from .common import ConfigError
from .datasets import Record
from .datasets import load_records  # noqa: F401  (re-exported for callers of train)
from .frontends import FRONTENDS, extract_inputs, get_frontend  # noqa: F401  (re-exported)
from .splits import (  # noqa: F401  (re-exported for callers of train)
    LABEL_INDEX, Split, labels_of, random_split, speaker_folds, speaker_split,
)

@dataclass
class TrainConfig:
    arch: dict = field(default_factory=lambda: {"name": "conv_attention"})
    # "handcrafted": frames x 233 features; "whisper-base": pooled Whisper encoder states.
    frontend: str = "handcrafted"
    learning_rate: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 1e-4  # AdamW, decoupled
    label_smoothing: float = 0.1  # keeps the validation loss from rewarding over-confidence
    max_epochs: int = 30
    patience: int = 6
    seed: int = 0
    mask_features: bool = True  # time/frequency masking on training batches
    # "adamw": gradient training with early stopping. "logistic": for a linear embedding_mlp
    # head (dense_units=0) on pooled vectors, L2-regularised multinomial logistic regression
    # solved to convergence (L-BFGS, scikit-learn), weights copied into the PyTorch layer.
    optimizer: str = "adamw"
    l2_c: float = 0.01  # inverse L2 strength for "logistic" (scikit-learn's C)
    augment_copies: int = 0  # waveform-augmented copies of each training clip
    threads: int = 2
    device: str = "auto"  # "auto" (CUDA when available), "cpu", "cuda"
    # "bf16": autocast matrix work to bfloat16 (1.5x faster per epoch on this CPU, see
    # benchmarks/train_speed.py); weights, optimiser and loss stay float32.
    precision: str = "fp32"

    def to_dict(self) -> dict:
        return asdict(self)


def class_weights(y: np.ndarray, n_classes: int = len(EMOTIONS)) -> np.ndarray:
    """Inverse-frequency weights (mean 1 over present classes); absent classes weigh 0."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max(1, (counts > 0).sum()), 0.0)
    return w.astype(np.float32)


@dataclass
class FitResult:
    model: object  # torch.nn.Module, best epoch's weights
    history: dict
    best_epoch: int
    seconds: float
    arch: dict = field(default_factory=dict)  # the architecture of the net actually built


def _batches(n: int, size: int, rng: np.random.Generator | None):
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, size):
        yield order[start : start + size]


def validate_config(config: TrainConfig) -> None:
    """Refuse settings that cannot work together before any data is read (ConfigError)."""
    from .architectures import ARCHITECTURES

    name = config.arch.get("name")
    if name not in ARCHITECTURES:
        raise ConfigError(f"unknown architecture {name!r}; choose from {', '.join(ARCHITECTURES)}")
    frontend = get_frontend(config.frontend)
    if name not in frontend.architectures:
        raise ConfigError(f"the {config.frontend} front end needs --arch "
                          f"{' or '.join(frontend.architectures)}, not {name}")
    if config.optimizer not in ("adamw", "adam", "logistic"):
        raise ConfigError(f"optimizer must be 'adamw', 'adam' or 'logistic', not {config.optimizer!r}")
    if config.optimizer == "logistic" and name != "embedding_mlp":
        raise ConfigError("optimizer 'logistic' needs the embedding_mlp head on pooled vectors")
    if config.precision not in ("fp32", "bf16"):
        raise ConfigError(f"precision must be 'fp32' or 'bf16', not {config.precision!r}")
    if config.batch_size < 1 or config.max_epochs < 1 or config.learning_rate <= 0:
        raise ConfigError("batch size and epochs must be at least 1, the learning rate positive")


def resolve_device(name: str = "auto") -> str:
    """"auto": the GPU when PyTorch sees one, else the CPU. Bundles are the same either way."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but PyTorch sees no CUDA GPU")
    return name


def predict_logits(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    import torch

    device = next(model.parameters()).device
    model.eval()
    out = []
    with torch.no_grad():
        for idx in _batches(len(x), batch_size, None):
            out.append(model(torch.from_numpy(x[idx]).to(device)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(EMOTIONS)), np.float32)


def _make_optimiser(model, config: TrainConfig):
    import torch

    if config.optimizer == "adam":  # the reference's: Adam, no weight decay
        return torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    return torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                             weight_decay=config.weight_decay)


def _train_epoch(model, optimiser, x_train, y_train, weights, config, rng, device) -> tuple[float, float]:
    """One pass over the shuffled training set; returns (mean loss, accuracy)."""
    import torch
    from torch.nn import functional as F

    from .augment import mask_features

    model.train()
    total, correct, seen = 0.0, 0, 0
    for idx in _batches(len(x_train), config.batch_size, rng):
        if isinstance(x_train, torch.Tensor):  # already on the device: index there
            xb_t, yb = x_train[torch.from_numpy(idx).to(device)], y_train[torch.from_numpy(idx).to(device)]
        else:
            xb = x_train[idx]
            if config.mask_features and xb.ndim == 3:
                xb = mask_features(xb, rng)
            xb_t = torch.from_numpy(np.ascontiguousarray(xb)).to(device, non_blocking=True)
            yb = torch.from_numpy(y_train[idx]).to(device, non_blocking=True)
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16,
                            enabled=config.precision == "bf16"):
            logits = model(xb_t)
        logits = logits.float()
        loss = F.cross_entropy(logits, yb, weight=weights, label_smoothing=config.label_smoothing)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimiser.step()
        total += float(loss.detach()) * len(idx)
        correct += int((logits.argmax(1) == yb).sum())
        seen += len(idx)
    return total / seen, correct / seen


def fit(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    config: TrainConfig,
    progress: bool = True,
    time_budget_s: float | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
) -> FitResult:
    """Train on standardised features; early-stop on validation loss; keep the best weights.

    With ``checkpoint_dir`` the state after every epoch is written there (safetensors + JSON),
    and ``resume=True`` continues from it: a long CPU run can be stopped and picked up later."""
    if config.optimizer == "logistic":
        return _fit_logistic(x_train, y_train, x_val, y_val, config)
    if config.optimizer not in ("adamw", "adam"):
        raise ConfigError(f"optimizer must be 'adamw', 'adam' or 'logistic', not {config.optimizer!r}")
    if config.precision not in ("fp32", "bf16"):
        raise ConfigError(f"precision must be 'fp32' or 'bf16', not {config.precision!r}")
    import torch
    from torch.nn import functional as F
    from tqdm.auto import tqdm

    from .checkpoint import Checkpoint
    from .model import build_model

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    rng = np.random.default_rng(config.seed)
    model = build_model(config.arch, x_train.shape[-1], len(EMOTIONS)).to(device)
    optimiser = _make_optimiser(model, config)
    weights = torch.from_numpy(class_weights(y_train)).to(device)
    state = Checkpoint.fresh()
    if resume and checkpoint_dir is not None and Checkpoint.exists(checkpoint_dir):
        state = Checkpoint.load(checkpoint_dir, model, optimiser, rng, config.to_dict())
    started = time.perf_counter() - state.seconds
    y_val_t = torch.from_numpy(y_val)
    x_fit, y_fit = x_train, y_train
    if device != "cpu" and not (config.mask_features and x_train.ndim == 3):
        # No per-batch NumPy work: keep the training set on the GPU (about 1 GB for the corpora).
        x_fit, y_fit = torch.from_numpy(x_train).to(device), torch.from_numpy(y_train).to(device)
    bar = tqdm(range(state.epoch + 1, config.max_epochs + 1), desc="training", unit="epoch",
               disable=not progress, initial=state.epoch, total=config.max_epochs)
    for epoch in bar:
        if state.stale >= config.patience:
            break
        loss, acc = _train_epoch(model, optimiser, x_fit, y_fit, weights, config, rng, device)
        val_logits = torch.from_numpy(predict_logits(model, x_val))
        val_loss = float(F.cross_entropy(val_logits, y_val_t, weight=weights.cpu()))
        val_acc = float((val_logits.argmax(1).numpy() == y_val).mean())
        state.record(epoch, model, loss=loss, accuracy=acc, val_loss=val_loss, val_accuracy=val_acc)
        bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.3f}", val_loss=f"{val_loss:.3f}",
                        val_acc=f"{val_acc:.3f}")
        state.seconds = time.perf_counter() - started
        if checkpoint_dir is not None:
            state.save(checkpoint_dir, model, optimiser, rng, config.to_dict())
        if time_budget_s is not None and state.seconds > time_budget_s:
            break
    bar.close()
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    model = model.cpu().eval()
    return FitResult(model, state.history, state.best_epoch, time.perf_counter() - started,
                     full_arch(config.arch))


def _fit_logistic(x_train, y_train, x_val, y_val, config: TrainConfig) -> FitResult:
    import torch
    from sklearn.linear_model import LogisticRegression
    from torch.nn import functional as F

    from .model import build_model

    arch = {**config.arch, "dense_units": 0, "input_dropout": 0.0}
    if arch.get("name") != "embedding_mlp" or x_train.ndim != 2:
        raise ConfigError("optimizer 'logistic' needs the embedding_mlp head on pooled vectors")
    started = time.perf_counter()
    clf = LogisticRegression(C=config.l2_c, class_weight="balanced", max_iter=3000)
    clf.fit(x_train, y_train)
    model = build_model(arch, x_train.shape[-1], len(EMOTIONS))
    layer = model.net[-1]
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.fill_(-30.0)  # classes absent from training stay (practically) impossible
        for row, label in enumerate(clf.classes_):
            layer.weight[label] = torch.from_numpy(clf.coef_[row].astype(np.float32))
            layer.bias[label] = float(clf.intercept_[row])
    model.eval()
    weights = torch.from_numpy(class_weights(y_train))
    history = {}
    for name, x, y in (("", x_train, y_train), ("val_", x_val, y_val)):
        logits = torch.from_numpy(predict_logits(model, x))
        history[f"{name}loss"] = [float(F.cross_entropy(logits, torch.from_numpy(y), weight=weights))]
        history[f"{name}accuracy"] = [float((logits.argmax(1).numpy() == y).mean())]
    # The net is a single linear layer whatever dense_units the config named: record that.
    return FitResult(model, history, 1, time.perf_counter() - started, full_arch(arch))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature scaling (Guo et al. 2017): the T > 0 minimising validation NLL."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        return float(-logp[np.arange(len(y)), y].mean())

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


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


def _encoder_config(frontend: str) -> dict | None:
    return get_frontend(frontend).bundle_config()


def _prepare(records, feature_config, cache_dir, workers, progress, frontend="handcrafted"):
    from .extraction import failure_summary

    ex = extract_inputs(records, feature_config, frontend, cache_dir, workers, progress)
    if ex.failures and progress:
        print(failure_summary(ex.failures))
    return ex


def _augmented(records, idx, copies, feature_config, cache_dir, workers, progress, frontend):
    """Waveform-augmented copies of the training clips (cached like clean features)."""
    xs, ys = [], []
    for k in range(1, copies + 1):
        ex = extract_inputs([records[i] for i in idx], feature_config, frontend, cache_dir, workers,
                      progress, variant=f"aug{k}", desc=f"augment {k}")
        xs.append(ex.features)
        ys.append(labels_of(ex.records))
    return xs, ys


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
    from .evaluate import report

    y = labels_of(records)
    x_train, y_train = features[split.train], y[split.train]
    if config.augment_copies:
        xs, ys = _augmented(records, split.train, config.augment_copies, feature_config,
                            cache_dir, workers, progress, config.frontend)
        x_train = np.concatenate([x_train, *xs])
        y_train = np.concatenate([y_train, *ys])
    x_val, y_val = features[split.val], y[split.val]
    clf = TrainedClassifier.fit(x_train, y_train, x_val, y_val, config, progress=progress,
                                time_budget_s=time_budget_s, checkpoint_dir=checkpoint_dir,
                                resume=resume)
    out = {"classifier": clf,
           "val": report([records[i] for i in split.val], y_val, clf.predict_proba(x_val))}
    if len(split.test):
        x_test, test_records = features[split.test], [records[i] for i in split.test]
        out["test"] = report(test_records, y[split.test], clf.predict_proba(x_test))
        out["test_uncalibrated"] = report(test_records, y[split.test],
                                          clf.predict_proba(x_test, calibrated=False))
    return out


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
    from .datasets import summarise
    from .model_card import model_card
    from .evaluate import summary_table, write_report
    from .features import FeatureConfig

    config = config or TrainConfig()
    feature_config = feature_config or FeatureConfig()
    out_dir = Path(out_dir)
    records, skipped = load_records(data)
    ex = _prepare(records, feature_config, cache_dir, workers, progress, config.frontend)
    records = ex.records
    if protocol == "speaker":
        split = speaker_split(records, test_fraction=0.15 if test_fraction is None else test_fraction,
                              seed=config.seed)
    elif protocol == "random":
        split = random_split(records, test_fraction=0.2 if test_fraction is None else test_fraction,
                             seed=config.seed)
    else:
        raise ConfigError(f"protocol must be 'speaker' or 'random', not {protocol!r}")
    if not len(split.train) or not len(split.val):
        raise ConfigError("too few speakers to make train and validation sets")
    res = run_experiment(records, ex.features, split, config, feature_config, cache_dir=cache_dir,
                         workers=workers, progress=progress, time_budget_s=time_budget_s,
                         checkpoint_dir=out_dir / "checkpoint", resume=resume)
    clf = res["classifier"]
    save_history(clf.history, out_dir)
    split_info = split.describe(records)
    metrics = {"protocol": protocol, "seed": config.seed, "validation": res["val"]}
    if cv_report:
        cv = json.loads(Path(cv_report).read_text())
        metrics["cross_validation"] = {"folds": len(cv["folds"]), "summary": cv["summary"],
                                       "table": cv["table"], "seed": cv["config"]["seed"]}
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
    card = model_card(clf.arch, data_summary, metrics, training, clf.temperature, config.frontend,
                      input_shape=input_shape)
    info = clf.save(out_dir / "bundle", feature_config=feature_config, frontend=config.frontend,
                    input_shape=input_shape, metrics=_compact_metrics(metrics), data=data_summary,
                    training=training, card=card, encoder=_encoder_config(config.frontend))
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
) -> dict:
    """``ser cv``: k folds grouped by speaker. Each fold is tested once; validation speakers
    (for early stopping and temperature) come from the remaining folds' speakers."""
    from .features import FeatureConfig

    config = config or TrainConfig()
    feature_config = feature_config or FeatureConfig()
    if folds < 2:
        raise ConfigError("at least 2 folds are needed")
    records, _ = load_records(data)
    ex = _prepare(records, feature_config, cache_dir, workers, progress, config.frontend)
    records = ex.records
    test_folds = speaker_folds(records, folds, seed=config.seed)
    per_fold, histories = [], []
    confusion = np.zeros((len(EMOTIONS), len(EMOTIONS)), dtype=np.int64)
    confusion_by_corpus: dict[str, np.ndarray] = {}
    for k, test_idx in enumerate(test_folds):
        rest = np.setdiff1d(np.arange(len(records)), test_idx)
        inner = speaker_split([records[i] for i in rest], val_fraction=0.12, test_fraction=0.0,
                              seed=config.seed + k)
        split = Split(rest[inner.train], rest[inner.val], test_idx, "speaker", config.seed)
        res = run_experiment(records, ex.features, split, config, feature_config,
                             cache_dir=cache_dir, workers=workers, progress=progress)
        per_fold.append(_compact_metrics({"protocol": "speaker", "seed": config.seed,
                                          "validation": res["val"], "test": res["test"],
                                          "test_uncalibrated_ece": res["test_uncalibrated"]["overall"]["ece"]}))
        clf = res["classifier"]
        histories.append({**clf.history, "best_epoch": clf.best_epoch,
                          "train_seconds": clf.train_seconds})
        confusion += np.asarray(res["test"]["overall"]["confusion"])
        for corpus, m in res["test"]["per_corpus"].items():
            confusion_by_corpus[corpus] = (confusion_by_corpus.get(corpus, 0)
                                           + np.asarray(m["confusion"]))
        if progress:
            m = res["test"]["overall"]
            print(f"fold {k + 1}/{folds}: WA {100 * m['wa']:.1f}%  UA {100 * m['ua']:.1f}%")
    summary: dict[str, dict] = {}
    groups = ["overall"] + sorted({c for f in per_fold for c in f["test"]["per_corpus"]})
    for group in groups:
        vals = [f["test"]["overall"] if group == "overall" else f["test"]["per_corpus"].get(group)
                for f in per_fold]
        vals = [v for v in vals if v]
        summary[group] = {
            key: {"mean": float(np.mean([v[key] for v in vals])), "std": float(np.std([v[key] for v in vals]))}
            for key in ("wa", "ua", "macro_f1")
        }
    ece_after = [f["test"]["overall"]["ece"] for f in per_fold]
    ece_before = [f["test_uncalibrated_ece"] for f in per_fold]
    summary["calibration"] = {"ece_before": {"mean": float(np.mean(ece_before)), "std": float(np.std(ece_before))},
                              "ece_after": {"mean": float(np.mean(ece_after)), "std": float(np.std(ece_after))}}
    lines = [f"{folds}-fold cross-validation grouped by speaker (seed {config.seed}, "
             f"arch {config.arch['name']})", "| data | WA | UA | macro-F1 |", "|---|---|---|---|"]
    for group, s in summary.items():
        if group == "calibration":
            continue
        lines.append("| " + group + " | " + " | ".join(
            f"{100 * s[k]['mean']:.1f} ± {100 * s[k]['std']:.1f}%" for k in ("wa", "ua", "macro_f1")) + " |")
    lines.append(f"\nExpected calibration error on the test folds: {np.mean(ece_before):.3f} before "
                 f"temperature scaling, {np.mean(ece_after):.3f} after (temperature fitted on "
                 "each fold's validation speakers).")
    return {"folds": per_fold, "summary": summary, "table": "\n".join(lines),
            "config": config.to_dict(), "feature_config": feature_config.to_dict(),
            "histories": histories, "confusion": confusion.tolist(),
            "confusion_per_corpus": {c: m.tolist() for c, m in confusion_by_corpus.items()}}
