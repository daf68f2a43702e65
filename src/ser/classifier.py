"""A trained classifier: the net, the scaler that standardises its input, the calibration
temperature and the architecture of the net actually built — what training produces and a
bundle holds, with a small scikit-learn-like protocol (``fit``, ``predict_proba``, ``save``,
``load``). :class:`OnnxClassifier` is its inference twin, read from a bundle without torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .common import EMOTIONS
from .common import softmax
from .bundle import load_torch_model, read_bundle, save_bundle
from .train import fit, fit_temperature, predict_logits


@dataclass
class Scaler:
    """Per-feature standardisation, fitted on training frames only; stored as JSON lists."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> "Scaler":
        flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
        return cls(flat.mean(0).astype(np.float32), np.maximum(flat.std(0), 1e-5).astype(np.float32))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Scaler":
        return cls(np.asarray(d["mean"], np.float32), np.asarray(d["std"], np.float32))


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


class OnnxClassifier:
    """A bundle's classifier on ONNX Runtime: standardise, run the graph, softmax with the
    bundle's temperature. No torch."""

    def __init__(self, bundle, threads: int = 1):
        import onnxruntime as ort

        self.scaler = Scaler.from_dict(bundle.config["scaler"])
        self.temperature = bundle.temperature
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(bundle.onnx_path), options,
                                            providers=["CPUExecutionProvider"])

    def predict_proba(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        out = [softmax(self.session.run(None, {"features": self.scaler.transform(x[i : i + batch_size])})[0],
                       self.temperature)
               for i in range(0, len(x), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(EMOTIONS)), np.float32)
