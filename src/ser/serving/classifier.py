"""A bundle's classifier on ONNX Runtime (:class:`OnnxClassifier`: standardise, run the graph,
softmax with the bundle's temperature) and the :class:`Scaler` it standardises with. No torch;
:class:`ser.training.classifier.TrainedClassifier` is the PyTorch twin that training fits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class Session:
    """What adapting over a session needs of its units, in bounded memory: the plain head's
    probabilities, the adapted head's logits before the session's offset (a row per unit) and
    the sum of the units' standardised inputs."""

    plain: np.ndarray
    logits: np.ndarray
    input_sum: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return len(self.plain)

    @classmethod
    def joined(cls, sessions: list["Session"]) -> "Session":
        return cls(np.concatenate([s.plain for s in sessions]), np.concatenate([s.logits for s in sessions]),
                   np.sum([s.input_sum for s in sessions], axis=0))


class SessionAdaptation:
    """A bundle's session adaptation (``ser.training.adaptation`` fits it): a second head,
    trained on states with each training speaker's mean removed, answers a session's units with
    the session's mean standardised input removed, shrunk toward none by n / (n + shrink). Only
    for sessions of at least ``min_utterances`` whose plain answers are spread — the plain top
    emotion holds under ``below_share`` of the units: a session's mean is its speaker's voice
    and microphone only when his emotions vary, and a speaker angry the whole time must stay
    angry (docs/results.md, "Speaker and channel adaptation")."""

    def __init__(self, config: dict, scaler: Scaler):
        self.weights = np.asarray(config["weights"], np.float32)  # (labels, inputs)
        self.bias = np.asarray(config["bias"], np.float32)
        self.temperature = float(config["temperature"])
        self.shrink = float(config["shrink"])
        self.below_share = float(config["below_share"])
        self.min_utterances = max(2, int(config.get("min_utterances", 2)))
        self.scaler = scaler

    def session(self, x: np.ndarray, plain: np.ndarray) -> Session:
        """The session of model inputs ``x`` whose plain probabilities are ``plain``."""
        z = self.scaler.transform(x).reshape(len(x), -1)
        return Session(plain, z @ self.weights.T + self.bias, z.sum(0, dtype=np.float64))

    def applies(self, session: Session) -> bool:
        n = len(session)
        return (n >= self.min_utterances
                and np.bincount(session.plain.argmax(1)).max() / n < self.below_share)

    def probabilities(self, session: Session) -> np.ndarray:
        offset = (session.input_sum / (len(session) + self.shrink)).astype(np.float32)
        return softmax(session.logits - offset @ self.weights.T, self.temperature)
