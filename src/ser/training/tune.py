"""``ser tune``: Optuna search over the reference's hyperparameters and the architecture,
scored on validation speakers only (test speakers are never touched). Budget: trials and/or
seconds. The best parameters are saved as ``best_params.json``, ready for ``ser train --params``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from ser.serving.classifier import Scaler
from ser.training.datasets import load_records
from ser.frontends.features import FeatureConfig
from ser.training.extraction import extract_inputs
from ser.training.splits import labels_of, speaker_split
from ser.training.loop import TrainConfig, fit



def suggest(trial, frontend: str = "handcrafted", arch_name: str | None = None) -> tuple[dict, dict]:
    """(arch, optimiser params) for one trial; ``arch_name`` fixes the architecture."""
    if frontend != "handcrafted":  # pooled encoder vectors: a linear or one-hidden-layer head
        arch = {
            "name": "embedding_mlp",
            "input_dropout": trial.suggest_float("input_dropout", 0.0, 0.5),
            "dense_units": trial.suggest_categorical("dense_units", [0, 128, 256, 512]),
            "dense_dropout": trial.suggest_float("dense_dropout", 0.2, 0.6),
        }
        return arch, {
            "learning_rate": trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True),
            "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256]),
            "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True),
        }
    choices = [arch_name] if arch_name else ["reference_lstm", "conv_attention"]
    name = trial.suggest_categorical("arch", choices)
    if name == "reference_lstm":
        arch = {
            "name": name,
            "units": [trial.suggest_categorical("units_1", [128, 256]),
                      trial.suggest_categorical("units_2", [128, 256]),
                      trial.suggest_categorical("units_3", [64, 128])],
            "lstm_dropout": trial.suggest_float("lstm_dropout", 0.1, 0.5),
        }
    else:
        arch = {
            "name": name,
            "conv_channels": trial.suggest_categorical("conv_channels", [64, 128, 192]),
            "lstm_units": trial.suggest_categorical("lstm_units", [64, 128, 192]),
            "lstm_dropout": trial.suggest_float("lstm_dropout", 0.1, 0.5),
        }
    arch["dense_units"] = trial.suggest_categorical("dense_units", [128, 256, 512])
    arch["dense_dropout"] = trial.suggest_float("dense_dropout", 0.2, 0.6)
    opt = {
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256]),
    }
    return arch, opt


def tune(
    data: Sequence[str | Path],
    out_dir: str | Path,
    *,
    trials: int = 20,
    timeout_s: float | None = None,
    epochs: int = 15,
    seed: int = 0,
    cache_dir=None,
    workers: int | None = None,
    progress: bool = True,
    feature_config=None,
    frontend: str = "handcrafted",
    arch_name: str | None = None,
    device: str = "auto",
    recipe: dict | None = None,
) -> dict:
    """``recipe``: fixed TrainConfig fields for every trial (e.g. the reference's plain Adam
    without label smoothing or masking), so the search tunes the recipe it will be used with."""
    import optuna


    feature_config = feature_config or FeatureConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records, _ = load_records(data)
    ex = extract_inputs(records, feature_config, frontend, cache_dir, workers, progress)
    records, y = ex.records, labels_of(ex.records)
    # Test speakers are set aside and never scored; the search sees train and validation only.
    split = speaker_split(records, val_fraction=0.15, test_fraction=0.15, seed=seed)
    scaler = Scaler.fit(ex.features[split.train])
    x_train, y_train = scaler.transform(ex.features[split.train]), y[split.train]
    x_val, y_val = scaler.transform(ex.features[split.val]), y[split.val]

    def objective(trial) -> float:
        arch, opt = suggest(trial, frontend, arch_name)
        config = TrainConfig(arch=arch, max_epochs=epochs, patience=4, seed=seed,
                             frontend=frontend, device=device, **{**(recipe or {}), **opt})
        result = fit(x_train, y_train, x_val, y_val, config, progress=False)
        best = result.best_epoch - 1
        trial.set_user_attr("val_accuracy", result.history["val_accuracy"][best])
        return result.history["val_loss"][best]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials, timeout=timeout_s, show_progress_bar=progress)
    arch, opt = suggest(optuna.trial.FixedTrial(study.best_params), frontend, arch_name)
    best = {
        "arch": arch, **opt, "frontend": frontend,
        "val_loss": float(study.best_value),
        "val_accuracy": float(study.best_trial.user_attrs["val_accuracy"]),
        "trials": len(study.trials), "seed": seed, "recipe": recipe or {},
        "protocol": "speaker-grouped validation split (test speakers held out, never scored)",
    }
    (out_dir / "best_params.json").write_text(json.dumps(best, indent=2))
    (out_dir / "trials.json").write_text(json.dumps(
        [{"number": t.number, "params": t.params, "value": t.value, "state": t.state.name,
          **t.user_attrs} for t in study.trials], indent=2))
    return best
