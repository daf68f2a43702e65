"""A trained classifier: the net, the scaler that standardises its input, the calibration
temperature and the architecture of the net actually built — what training produces and a
bundle holds, with a small scikit-learn-like protocol (``fit``, ``predict_proba``, ``save``,
``load``). :class:`ser.serving.classifier.OnnxClassifier` is its inference twin, read from a
bundle without torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ser.common import softmax
from ser.serving.classifier import Scaler
from ser.serving.bundle import read_bundle
from ser.training.export import load_torch_model, save_bundle
from ser.training.loop import fit, fit_temperature, predict_logits


@dataclass
class TrainedClassifier:
    net: object  # torch.nn.Module in eval mode
    scaler: Scaler
    arch: dict  # every parameter of the net actually built
    temperature: float = 1.0
    history: dict = field(default_factory=dict)
    best_epoch: int = 0
    train_seconds: float = 0.0

    @classmethod
    def fit(cls, x_train, y_train, x_val, y_val, config, *, progress: bool = True,
            time_budget_s: float | None = None, checkpoint_dir: Path | None = None,
            resume: bool = False, sample_weight: np.ndarray | None = None) -> "TrainedClassifier":
        """Standardise with training statistics, train (early stopping on the validation
        set), then fit the temperature on the validation set."""
        scaler = Scaler.fit(x_train)
        x_val_s = scaler.transform(x_val)
        result = fit(scaler.transform(x_train), y_train, x_val_s, y_val, config,
                     progress=progress, time_budget_s=time_budget_s,
                     checkpoint_dir=checkpoint_dir, resume=resume, sample_weight=sample_weight)
        clf = cls(result.model, scaler, result.arch, 1.0, result.history, result.best_epoch,
                  result.seconds)
        clf.temperature = fit_temperature(clf.logits(x_val), y_val)
        return clf

    def logits(self, x: np.ndarray) -> np.ndarray:
        return predict_logits(self.net, self.scaler.transform(x))

    def predict_proba(self, x: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Probabilities over the labels; the temperature is applied here, once."""
        return softmax(self.logits(x), self.temperature if calibrated else 1.0)

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    def save(self, root: str | Path, *, feature_config, frontend: str, input_shape: list[int],
             metrics: dict, data: dict, training: dict, card: str, encoder: dict | None = None,
             extra_files: dict[str, bytes] | None = None):
        return save_bundle(self.net, root, feature_config=feature_config,
                           scaler=self.scaler.to_dict(), arch=self.arch,
                           temperature=self.temperature, metrics=metrics, data=data,
                           training=training, card=card, frontend=frontend, encoder=encoder,
                           input_shape=input_shape, extra_files=extra_files)

    @classmethod
    def load(cls, root: str | Path) -> "TrainedClassifier":
        """The PyTorch net of a bundle (for fine-tuning or re-export); checks hashes first."""
        info = read_bundle(root)
        return cls(load_torch_model(info), Scaler.from_dict(info.config["scaler"]),
                   dict(info.config["arch"]), info.temperature)
