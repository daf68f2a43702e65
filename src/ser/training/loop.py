"""The training loop: a network from its config, class-weighted cross-entropy, AdamW (or the
reference's plain Adam), early stopping on validation loss, feature masking, CUDA when present,
bfloat16 autocast on request, a checkpoint after every epoch; the L-BFGS logistic head for
pooled encoder vectors; temperature scaling. Orchestration (data, splits, reports, bundles)
is in :mod:`ser.training.pipeline`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ser.common import EMOTIONS
from ser.training.architectures import ARCHITECTURES, full_arch
from ser.training.augment import mask_features
from ser.training.checkpoint import Checkpoint
from ser.common import ConfigError
from ser.frontends.registry import get_frontend


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
    augment_kind: str = "classic"  # or "conditions" (see ser.training.augment)
    augment_weight: float = 1.0  # "logistic" only: an augmented copy's weight relative to its clip
    # "logistic" only: weigh each training clip by (clips in its corpus) ** -balance_corpora:
    # 0 leaves CREMA-D (5x RAVDESS's clips, 15x EMOVO's) dominant, 1 gives every corpus the
    # same total weight.
    balance_corpora: float = 0.0
    encoder: dict = field(default_factory=dict)  # front-end options, e.g. {"compute_type": ...}
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
    name = config.arch.get("name")
    if name not in ARCHITECTURES:
        raise ConfigError(f"unknown architecture {name!r}; choose from {', '.join(ARCHITECTURES)}")
    frontend = get_frontend(config.frontend, config.encoder)
    if name not in frontend.architectures:
        raise ConfigError(f"the {config.frontend} front end needs --arch "
                          f"{' or '.join(frontend.architectures)}, not {name}")
    if config.optimizer not in ("adamw", "adam", "logistic"):
        raise ConfigError(f"optimizer must be 'adamw', 'adam' or 'logistic', not {config.optimizer!r}")
    if config.augment_weight != 1.0 and config.optimizer != "logistic":
        raise ConfigError("weighing augmented copies is implemented for the logistic head only")
    if config.augment_weight <= 0:
        raise ConfigError("the augmented copies' weight must be positive")
    if config.balance_corpora and config.optimizer != "logistic":
        raise ConfigError("balancing corpora is implemented for the logistic head only")
    if config.optimizer == "logistic" and name != "embedding_mlp":
        raise ConfigError("optimizer 'logistic' needs the embedding_mlp head on pooled vectors")
    if config.augment_kind not in ("classic", "conditions"):
        raise ConfigError(f"augment kind must be 'classic' or 'conditions', not {config.augment_kind!r}")
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
    sample_weight: np.ndarray | None = None,
) -> FitResult:
    """Train on standardised features; early-stop on validation loss; keep the best weights.

    With ``checkpoint_dir`` the state after every epoch is written there (safetensors + JSON),
    and ``resume=True`` continues from it: a long CPU run can be stopped and picked up later."""
    validate_config(config)
    if config.optimizer == "logistic":
        return _fit_logistic(x_train, y_train, x_val, y_val, config, sample_weight)
    import torch
    from tqdm.auto import tqdm

    from ser.training.networks import build_model

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
        val_loss, val_acc = _validate(model, x_val, y_val_t, weights)
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


def _validate(model, x_val: np.ndarray, y_val, weights) -> tuple[float, float]:
    """Validation loss (class-weighted, like training's) and accuracy."""
    import torch
    from torch.nn import functional as F

    logits = torch.from_numpy(predict_logits(model, x_val))
    loss = float(F.cross_entropy(logits, y_val, weight=weights.cpu()))
    return loss, float((logits.argmax(1) == y_val).float().mean())


def _fit_logistic(x_train, y_train, x_val, y_val, config: TrainConfig,
                  sample_weight: np.ndarray | None = None) -> FitResult:
    import torch
    from sklearn.linear_model import LogisticRegression
    from torch.nn import functional as F

    from ser.training.networks import build_model

    arch = {**config.arch, "dense_units": 0, "input_dropout": 0.0}
    if arch.get("name") != "embedding_mlp" or x_train.ndim != 2:
        raise ConfigError("optimizer 'logistic' needs the embedding_mlp head on pooled vectors")
    started = time.perf_counter()
    clf = LogisticRegression(C=config.l2_c, class_weight="balanced", max_iter=3000)
    clf.fit(x_train, y_train, sample_weight=sample_weight)
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
