"""Compressed audio that arrives in pieces (a browser's ``MediaRecorder`` sends WebM/Opus or
Ogg/Opus chunks every few hundred milliseconds), decoded as it comes: FFmpeg (PyAV) reads
from a pipe in a worker thread, and :meth:`IncrementalDecoder.feed` returns once the worker
has decoded everything that the bytes so far allow (it then waits for more), so samples come
out in order, without lag, and memory stays that of a few pieces.

    >>> decoder = IncrementalDecoder("webm")                  # doctest: +SKIP
    >>> samples = decoder.feed(chunk)    # float32 mono at decoder.sample_rate (may be empty)
    >>> samples = decoder.close()        # what the end of the stream releases

Samples come at the stream's own rate, mono, as :func:`ser.audio.decode` gives them before
its resampling, so a live stream resampled like a file gives the file's samples.
"""

from __future__ import annotations

import threading

import numpy as np

from ser.audio.errors import AudioError, NotAudioError

#: Container names a live stream may declare, as FFmpeg's demuxers call them.
FORMATS = {"webm": "matroska", "ogg": "ogg"}


class _Pipe:
    """What FFmpeg reads: bytes as they are written, a read blocking until more come or the
    writer ends. :meth:`drained` waits until the reader has taken everything and waits."""

    def __init__(self):
        self._chunks: list[bytes] = []
        self._ended = self._reader_waits = self._reader_gone = False
        self._cond = threading.Condition()

    def write(self, data: bytes) -> None:
        with self._cond:
            self._chunks.append(bytes(data))
            self._cond.notify_all()

    def end(self) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def gone(self) -> None:
        """The reader has stopped (end of stream or error)."""
        with self._cond:
            self._reader_gone = True
            self._cond.notify_all()

    def drained(self) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._reader_gone or (self._reader_waits and not self._chunks))

    def read(self, n: int = -1) -> bytes:
        with self._cond:
            while not self._chunks and not self._ended:
                self._reader_waits = True
                self._cond.notify_all()
                self._cond.wait()
            self._reader_waits = False
            if not self._chunks:
                return b""
            data = b"".join(self._chunks)
            n = len(data) if n is None or n < 0 else n
            self._chunks = [data[n:]] if len(data) > n else []
            return data[:n]


class IncrementalDecoder:
    """One compressed stream (``"webm"`` or ``"ogg"``) decoded piece by piece."""

    def __init__(self, container: str):
        if container not in FORMATS:
            raise AudioError(f"unknown container {container!r}: use one of {', '.join(FORMATS)}")
        self.container = container
        self.sample_rate: int | None = None
        self._pipe = _Pipe()
        self._out: list[np.ndarray] = []
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._worker = threading.Thread(target=self._run, daemon=True, name="ser-decode")
        self._worker.start()

    def _run(self) -> None:
        import av

        try:
            try:
                # No probing beyond the header: the stream's first chunk is all there is yet.
                box = av.open(self._pipe, mode="r", format=FORMATS[self.container],
                              options={"probesize": "4096", "analyzeduration": "0"},
                              metadata_errors="ignore")
            except Exception:
                raise NotAudioError(f"not a {self.container} audio stream") from None
            with box:
                streams = [s for s in box.streams if s.type == "audio"]
                if not streams:
                    raise NotAudioError(f"the {self.container} stream has no audio")
                resampler = None
                try:
                    for frame in box.decode(streams[0]):
                        if resampler is None:
                            self.sample_rate = int(frame.sample_rate)
                            resampler = av.AudioResampler(format="flt", layout="mono",
                                                          rate=self.sample_rate)
                        for out in resampler.resample(frame):
                            self._out.append(out.to_ndarray().reshape(-1).astype(np.float32))
                    for out in (resampler.resample(None) if resampler is not None else ()):
                        self._out.append(out.to_ndarray().reshape(-1).astype(np.float32))
                except AudioError:
                    raise
                except Exception:
                    raise NotAudioError(f"the {self.container} audio is corrupt") from None
        except BaseException as exc:  # noqa: BLE001 - handed to the caller of feed/close
            self._error = exc
        finally:
            self._done.set()
            self._pipe.gone()  # the caller never waits for a worker that has stopped

    def _take(self) -> np.ndarray:
        if self._error is not None:
            raise self._error
        out, self._out = self._out, []
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def feed(self, data: bytes) -> np.ndarray:
        """Decode what ``data`` completes; returns the new samples (often none at first)."""
        if not self._done.is_set():
            self._pipe.write(data)
            self._pipe.drained()  # the worker has decoded all it can and waits for more
        return self._take()

    def abort(self) -> None:
        """Stop without waiting: the worker reads the end of the stream and ends."""
        self._pipe.end()

    @property
    def closed(self) -> bool:
        return self._pipe._ended

    def close(self) -> np.ndarray:
        """End of the stream: the last samples."""
        self._pipe.end()
        self._worker.join()
        return self._take()
