"""Live analysis: audio pushed in pieces of any size as it is recorded, utterances out as they
end — the same code path as :meth:`EmotionRecognizer.predict` on the whole recording, so the
utterances and emotions are the same.

    >>> session = recognizer.stream(sample_rate=16_000)     # doctest: +SKIP
    >>> for piece in microphone():                           # doctest: +SKIP
    ...     for event in session.feed(piece):
    ...         print(event)                                 # {"type": "utterance", ...}
    >>> session.close()                                      # doctest: +SKIP
    [..., {"type": "summary", ...}]

Events are plain dicts with a stable JSON form and a ``type``: ``speech_started`` and
``speech_ended`` (the detector's decisions, ``time_s``), ``interim`` (a first look at an
utterance as soon as the detector ends it, and every 1.4 s of speech longer than a window),
``utterance`` (``start_s``, ``end_s``, ``emotion``, ``confidence``, ``uncertain``,
``probabilities`` — a recording's segment) and, from :meth:`LiveSession.close`, one ``summary``
(the whole result, as ``predict`` gives it). A live stream is a recording from its first
second (no wait to tell a clip from a recording).

Latency: an utterance is reported once its window is decided as ``predict`` decides it: the
detector has closed it (0.3 s of pause) and the second of audio after it (its context) has
come — when the quiet after the speech is trimmed from the window whether or not the next
utterance starts soon, which is the common case; else once the next utterance has begun or
none can begin within 2 s. So about 1.1-1.3 s after its speech, up to ~2.3 s; the first look,
about 0.45 s.

How: :func:`ser.frontends.windows.stream_units` pulls 16-kHz blocks from an iterator; here it
runs in a worker thread whose iterator hands over each piece as it is fed, and ``feed`` returns
once the worker has taken everything it can from that piece (so memory is that of the stream's
bounded buffer, and results arrive in order).
"""

from __future__ import annotations

import queue
from collections import deque
import threading

import numpy as np

from ser.audio import AudioError
from ser.frontends.windows import DEFAULT_MAX_CLIP_S, Detection, stream_units
from ser.serving.classifier import Session
from ser.serving.results import Segment

_END = object()

#: While speech goes on past the model's window, an interim estimate of its last window at
#: least this often (seconds of stream).
INTERIM_EVERY_S = 1.4


class LiveSession:
    """One live stream through a recognizer; not thread-safe (one producer feeds it)."""

    def __init__(self, recognizer, sample_rate: int = 16_000, *,
                 max_clip_s: float = DEFAULT_MAX_CLIP_S):
        if int(sample_rate) <= 0:
            raise AudioError(f"sample_rate must be positive, not {sample_rate}")
        self.recognizer = recognizer
        self.sample_rate = int(sample_rate)
        target = recognizer.feature_config.sample_rate
        self._resampler = None
        if self.sample_rate != target:
            import soxr

            self._resampler = soxr.ResampleStream(self.sample_rate, target, 1, dtype="float32",
                                                  quality="HQ")
        self.samples_in = 0  # at the model's rate
        self.spans: list[tuple[float, float]] = []
        self.probs: list[np.ndarray] = []
        self.session: Session | None = None  # what session adaptation needs of the utterances
        self.speech_s = 0.0
        self.closed = False
        self._pieces: queue.Queue = queue.Queue()
        self._units: list = []
        self._looks: deque = deque(maxlen=4)  # (window, probabilities) of recent interim looks
        self._parked = threading.Semaphore(0)  # released when the worker waits for a piece
        self._error: BaseException | None = None
        self._worker = threading.Thread(target=self._run, args=(max_clip_s,), daemon=True,
                                        name="ser-live")
        self._worker.start()
        self._parked.acquire()

    def _blocks(self):
        while True:
            self._parked.release()
            piece = self._pieces.get()
            if piece is _END:
                return
            yield piece

    def _run(self, max_clip_s: float) -> None:
        try:
            # A live stream is a recording from its first second: no 5-s wait to tell a clip.
            for item in stream_units(self._blocks(), self.recognizer.feature_config, max_clip_s,
                                     clip_first=False, interim_every_s=INTERIM_EVERY_S):
                self._units.append(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller of feed/close
            self._error = exc
        finally:
            self._parked.release()  # the caller never waits for a worker that has stopped

    def _through(self, piece) -> list[dict]:
        self._pieces.put(piece)
        self._parked.acquire()
        if self._error is not None:
            raise self._error
        units, self._units = self._units, []
        return self._events(units)

    def feed(self, samples: np.ndarray) -> list[dict]:
        """Push mono samples (float in [-1, 1], at the session's rate); returns the events of
        the utterances that this piece completed (often none)."""
        if self.closed:
            raise AudioError("the live session is closed")
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if not np.all(np.isfinite(samples)):
            raise AudioError("the audio contains NaN or infinite samples")
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples)
        if not len(samples):
            return []
        self.samples_in += len(samples)
        return self._through(samples)

    def close(self) -> list[dict]:
        """End the stream: the events of the last utterances, then the ``summary``."""
        if self.closed:
            return []
        tail = []
        if self._resampler is not None:
            rest = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            if len(rest):
                self.samples_in += len(rest)
                tail = self._through(rest)
        self.closed = True
        events = tail + self._through(_END)
        self._worker.join()
        rec = self.recognizer
        probs = (np.stack(self.probs) if self.probs
                 else np.zeros((0, len(rec.labels)), np.float32))
        duration_s = self.samples_in / rec.feature_config.sample_rate
        result = rec._result(self.spans, probs, duration_s, self.speech_s, (), None, self.session)
        return events + [{"type": "summary", **result.to_dict()}]

    def abort(self) -> None:
        """End the stream without analysing what is left (the client went away); returns at
        once, the worker thread ends by itself."""
        if not self.closed:
            self.closed = True
            self._pieces.put(_END)

    def _events(self, items) -> list[dict]:
        """Events of the worker's items, in order. One batch through the model for the units,
        but a final unit whose window is the one the first look at its utterance analysed
        (common: the quiet after an utterance is trimmed from both) reuses that answer."""
        if not items:
            return []
        rec = self.recognizer
        answers: dict[int, tuple[np.ndarray, bool, np.ndarray]] = {}
        todo = []
        for i, item in enumerate(items):
            if isinstance(item, Detection):
                continue
            seen = next((a for w, a in self._looks if item.final and np.array_equal(w, item.window)),
                        None)
            if seen is not None:
                answers[i] = seen
            else:
                todo.append(i)
        if todo:
            probs, keep, x = rec._unit_answers([items[i] for i in todo])
            for i, p, k, xi in zip(todo, probs, keep, x):
                answers[i] = (p, k, xi)
                if not items[i].final:
                    self._looks.append((items[i].window, (p, k, xi)))
        events = []
        for i, item in enumerate(items):
            if isinstance(item, Detection):
                events.append({"type": item.kind, "time_s": round(item.time_s, 3)})
                continue
            p, speech, x = answers[i]
            if not speech:  # the bundle's gate: not speech (music, a hum the detector took)
                continue
            top = int(p.argmax())
            segment = Segment(item.start_s, item.end_s, rec.labels[top], float(p[top]))
            if item.final:
                self.spans.append((item.start_s, item.end_s))
                self.probs.append(p)
                if rec.adaptation is not None:  # a running sum: bounded however long the stream
                    one = rec._session(x[None], p[None])
                    self.session = one if self.session is None else Session.joined([self.session, one])
                self.speech_s += item.speech_s
            events.append({
                "type": "utterance" if item.final else "interim",
                **segment.to_dict(),  # as a recording's segment
                "uncertain": bool(p[top] < rec.uncertain_below),
                "probabilities": {k: round(float(v), 4) for k, v in zip(rec.labels, p)},
            })
        return events
