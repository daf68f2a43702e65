"""A bundle's classifier on ONNX Runtime (:class:`OnnxClassifier`: standardise, run the graph,
softmax with the bundle's temperature) and the :class:`Scaler` it standardises with. No torch;
:class:`ser.training.classifier.TrainedClassifier` is the PyTorch twin that training fits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ser.common import EMOTIONS, softmax


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


class SpeechGate:
    """A bundle's speech / non-speech check on the head's standardised input (a logistic
    regression; ``ser.training.speech_gate`` fits it): a unit whose P(speech) is under the
    threshold is not speech, whatever the voice activity detector found (music with a voice's
    harmonics). With it, the detector may be lenient on word-length input."""

    def __init__(self, config: dict, scaler: Scaler):
        self.weights = np.asarray(config["weights"], np.float32)
        self.bias = float(config["bias"])
        self.threshold = float(config["threshold"])
        self.scaler = scaler

    def speech_probability(self, x: np.ndarray) -> np.ndarray:
        z = self.scaler.transform(x).reshape(len(x), -1) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-z))

    def accepts(self, x: np.ndarray) -> np.ndarray:
        return self.speech_probability(x) >= self.threshold
