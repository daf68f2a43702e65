"""``WS /v1/stream``: a live stream in, events out as the speaker goes on (:mod:`ser.serving.live`).

    ws://host:8000/v1/stream?sample_rate=16000&format=s16le&channels=1

Binary frames carry the audio: PCM (``s16le`` or ``f32le``, interleaved when ``channels`` > 1,
at ``sample_rate``), or a browser's ``MediaRecorder`` chunks (``format=webm`` or ``ogg``, Opus;
the rate is the stream's own). Text frames: ``{"type": "end"}`` ends the stream. Every event
goes back as a JSON text frame with a ``type``: ``ready`` (the model and the limits),
``speech_started`` / ``speech_ended`` (``time_s``), ``interim`` and ``utterance`` (a recording's
segment fields), ``summary`` (the whole result, after ``end``) and ``error`` (``error``,
``code``: then the server closes with that code).

Close codes: 1000 after ``end``; 1003 a format or message this endpoint does not take; 1007
audio that is not what was declared (a frame of partial samples, NaN, undecodable WebM); 1008
a limit (the stream's length, idle time — the final events come first); 1009 a frame over the
size limit; 1011 an internal error; 1013 the server is busy (``retry_after_s``) or loading.

Back-pressure: a frame is analysed before the next is read, so a client that sends faster than
real time is served as fast as the machine goes while its frames wait in the network buffers,
not in memory. A dropped connection ends its session and frees everything.
"""

from __future__ import annotations

import asyncio
import json
import logging

import numpy as np
from fastapi import WebSocket
from fastapi.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect, WebSocketState

from ser.audio import AudioError
from ser.audio.incremental import FORMATS, IncrementalDecoder

PCM = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}
RETRY_AFTER_S = 5
#: Audio is analysed in steps of this much (a frame of 20 ms is only collected): each step
#: costs a hand-over to a worker thread, and 20-ms steps doubled a stream's CPU (0.15 vs 0.08
#: of a core, benchmarks/live.py) for at most 0.1 s sooner events.
STEP_S = 0.1
log = logging.getLogger("ser.interfaces.stream_ws")


class StreamClosed(Exception):
    """Close the stream with this code, after an ``error`` event (and maybe final events)."""

    def __init__(self, code: int, message: str, final: bool = False, **extra):
        super().__init__(message)
        self.code, self.message, self.final, self.extra = code, message, final, extra


def _params(ws: WebSocket) -> tuple[str, int | None, int]:
    q = ws.query_params
    fmt = q.get("format", "s16le")
    if fmt not in PCM and fmt not in FORMATS:
        raise StreamClosed(1003, f"format {fmt!r} is not taken: use one of "
                                 f"{', '.join([*PCM, *FORMATS])}")
    try:
        rate = int(q["sample_rate"]) if "sample_rate" in q else (16_000 if fmt in PCM else None)
        channels = int(q.get("channels", "1"))
    except ValueError:
        raise StreamClosed(1003, "sample_rate and channels must be whole numbers") from None
    if fmt in PCM and not 8_000 <= rate <= 192_000:
        raise StreamClosed(1003, f"sample_rate {rate} is out of range (8000-192000 Hz)")
    if not 1 <= channels <= 8:
        raise StreamClosed(1003, f"channels {channels} is out of range (1-8)")
    return fmt, rate, channels


def _pcm(data: bytes, fmt: str, channels: int) -> np.ndarray:
    width = PCM[fmt].itemsize * channels
    if len(data) % width:
        raise StreamClosed(1007, f"a frame of {len(data)} bytes is not whole samples of {fmt} "
                                 f"with {channels} channel(s) ({width} bytes each)")
    samples = np.frombuffer(data, PCM[fmt]).astype(np.float32)
    if fmt == "s16le":
        samples /= 32768.0
    elif not np.all(np.isfinite(samples)):
        raise StreamClosed(1007, "the audio contains NaN or infinite samples")
    return samples.reshape(-1, channels).mean(axis=1) if channels > 1 else samples


class _Stream:
    """One connection's state: the live session (made once the rate is known) and its decoder."""

    def __init__(self, recognizer, fmt: str, rate: int | None, channels: int, max_s: float):
        self.recognizer, self.fmt, self.rate, self.channels = recognizer, fmt, rate, channels
        self.max_s, self.seconds = max_s, 0.0
        self.decoder = IncrementalDecoder(fmt) if fmt in FORMATS else None
        self.session = recognizer.stream(rate) if self.decoder is None else None
        self.pending: list[np.ndarray] = []  # samples not yet analysed (less than STEP_S)

    def decode(self, data: bytes) -> np.ndarray:
        """A frame's samples (a compressed stream's: in a worker thread, the decoder waits)."""
        if self.decoder is None:
            return _pcm(data, self.fmt, self.channels)
        return self._decoded(lambda: self.decoder.feed(data))

    def _decoded(self, call) -> np.ndarray:
        """The decoder's samples (``feed`` or ``close``); the session starts once the
        compressed stream has told its rate."""
        try:
            samples = call()
        except AudioError as exc:
            raise StreamClosed(1007, str(exc)) from None
        if self.session is None and self.decoder.sample_rate:
            self.rate = self.decoder.sample_rate
            self.session = self.recognizer.stream(self.rate)
        return samples

    def add(self, samples: np.ndarray) -> np.ndarray | None:
        """Collect samples; the audio to analyse once there is ``STEP_S`` of it. Past the length
        limit, what is within it stays to be analysed and the stream ends."""
        if not len(samples):
            return None
        allowed = int(round((self.max_s - self.seconds) * self.rate))
        self.pending.append(samples[:max(allowed, 0)])
        self.seconds += min(len(samples), max(allowed, 0)) / self.rate
        if len(samples) > allowed:
            raise StreamClosed(1008, f"the stream is longer than this server's limit of "
                                     f"{self.max_s:g} s", final=True)
        if sum(map(len, self.pending)) < STEP_S * self.rate:
            return None
        out, self.pending = np.concatenate(self.pending), []
        return out

    def analyse(self, samples: np.ndarray) -> list[dict]:
        return self.session.feed(samples)

    def end(self) -> list[dict]:
        """Runs in a worker thread: what is left, then the final events and the summary."""
        events = []
        if self.decoder is not None and not self.decoder.closed:
            rest = self._decoded(self.decoder.close)
            try:
                self.add(rest)
            except StreamClosed:
                pass  # the limit: what fits is analysed
        if self.session is None:  # nothing decoded: a stream without audio
            self.session = self.recognizer.stream(16_000)
        if self.pending:
            events += self.session.feed(np.concatenate(self.pending))
            self.pending = []
        return events + self.session.close()

    def abort(self) -> None:
        """Free the threads (at once: also called when the connection's task is cancelled)."""
        if self.decoder is not None:
            self.decoder.abort()
        if self.session is not None:
            self.session.abort()


def add_stream_route(app, state, config) -> None:
    """``WS /v1/stream`` on ``app``, with ``config``'s limits (a :class:`ServerConfig`)."""
    active = {"streams": 0}

    @app.websocket("/v1/stream")
    async def live_stream(ws: WebSocket):
        await ws.accept()
        if active["streams"] >= config.max_streams:
            await _close(ws, StreamClosed(
                1013, f"server busy: {config.max_streams} live streams at once; try again in "
                      f"{RETRY_AFTER_S} s", retry_after_s=RETRY_AFTER_S))
            return
        active["streams"] += 1
        stream = None
        try:
            if not state.ready.is_set() or state.recognizer is None:
                raise StreamClosed(1013, "the model is still loading or could not be loaded: "
                                         "try again in a few seconds", retry_after_s=RETRY_AFTER_S)
            fmt, rate, channels = _params(ws)
            stream = await run_in_threadpool(_Stream, state.recognizer, fmt, rate, channels,
                                             config.max_stream_s)
            rec = state.recognizer
            await ws.send_json({
                "type": "ready", "format": fmt, "sample_rate": rate, "channels": channels,
                **rec.identity, "labels": list(rec.labels),
                "limits": {"max_stream_s": config.max_stream_s,
                           "max_frame_bytes": config.max_frame_bytes,
                           "idle_s": config.stream_idle_s}})
            while True:
                try:
                    message = await asyncio.wait_for(ws.receive(), timeout=config.stream_idle_s)
                except asyncio.TimeoutError:
                    raise StreamClosed(1008, f"no audio for {config.stream_idle_s:g} s",
                                       final=True) from None
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("bytes") is not None:
                    data = message["bytes"]
                    if len(data) > config.max_frame_bytes:
                        raise StreamClosed(1009, f"a frame of {len(data)} bytes is over the limit "
                                                 f"of {config.max_frame_bytes} bytes")
                    samples = (stream.decode(data) if stream.decoder is None
                               else await run_in_threadpool(stream.decode, data))
                    ready = stream.add(samples)
                    if ready is not None:
                        for event in await run_in_threadpool(stream.analyse, ready):
                            await ws.send_json(event)
                    continue
                try:
                    request = json.loads(message.get("text") or "")
                except ValueError:
                    raise StreamClosed(1007, 'text frames must be JSON, such as {"type": "end"}') from None
                if not isinstance(request, dict) or request.get("type") != "end":
                    raise StreamClosed(1003, 'the only message taken is {"type": "end"}')
                for event in await run_in_threadpool(stream.end):
                    await ws.send_json(event)
                await ws.close(1000)
                return
        except StreamClosed as closing:
            if closing.final and stream is not None and stream.session is not None:
                try:
                    for event in await run_in_threadpool(stream.end):
                        await ws.send_json(event)
                except (StreamClosed, WebSocketDisconnect, RuntimeError):
                    pass
            await _close(ws, closing)
        except (WebSocketDisconnect, RuntimeError):  # the client went away mid-send
            pass
        except Exception as exc:  # one stream's failure is never another's
            log.exception("live stream failed")
            await _close(ws, StreamClosed(1011, f"internal error: {type(exc).__name__}"))
        finally:
            active["streams"] -= 1
            if stream is not None:
                stream.abort()


async def _close(ws: WebSocket, closing: StreamClosed) -> None:
    if ws.application_state != WebSocketState.CONNECTED or ws.client_state != WebSocketState.CONNECTED:
        return
    try:
        await ws.send_json({"type": "error", "error": closing.message, "code": closing.code,
                            **closing.extra})
        await ws.close(closing.code, closing.message.encode()[:120].decode(errors="ignore"))
    except (WebSocketDisconnect, RuntimeError):
        pass
