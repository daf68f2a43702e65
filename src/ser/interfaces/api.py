"""HTTP API (FastAPI): ``ser serve``.

    POST /v1/predict       audio as a multipart upload (field "file") or as the raw body with
                           an audio content type -> the JSON object of ``ser predict --format
                           jsonl``; audio up to ``max_sync_duration_s``
    POST /v1/jobs          the same input, for long recordings: 202 and a job id; with
                           ``?speaker=NAME``, answered over that speaker's jobs so far
    GET  /v1/jobs/{id}     status (queued, running, done, failed), progress, result
    GET  /v1/health        "ok" once the model is loaded and warm, "loading" (503) before
    GET  /v1/model         labels, feature config, metrics, versions, limits
    WS   /v1/stream        live audio in, events out as each utterance ends (``stream_ws``)
    GET  /live             the live page: the microphone in a browser, on /v1/stream
    GET  /docs, /redoc, /openapi.json   (Swagger UI and ReDoc from the package: offline)

Bad input always gets a 4xx JSON error ``{"error": "..."}``: 413 for an upload over the size
limit or audio too long for the synchronous endpoint, 415 for a body that is not audio by its
content type, 422 for audio that cannot be analysed, 429 when the job queue is full (with
``Retry-After``, as the 503 of a busy server). CPU work
for /v1/predict runs in a thread pool, at most ``max_concurrency`` at a time; a request waiting
or running longer than ``timeout_s`` (each, so up to twice ``timeout_s`` in all) gets 503.
Jobs run one at a time on their own worker, so a long recording never holds the slots that
short requests use; finished jobs are kept for ``job_ttl_s``.
"""

import asyncio
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass

from fastapi import Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from ser.common import EMOTIONS, __version__
from ser.audio import DEFAULT_MAX_DURATION_S, AudioError, AudioTooLongError, declared_duration
from ser.interfaces.stream_ws import add_stream_route
from ser.serving.inference import EmotionRecognizer

AUDIO_TYPES = ("audio/", "video/mp4", "video/webm", "application/ogg", "application/octet-stream")
log = logging.getLogger("ser.interfaces.api")


@dataclass
class ServerConfig:
    model: "str | None" = None
    max_upload_mb: float = 25.0
    max_duration_s: float = DEFAULT_MAX_DURATION_S  # the longest audio accepted at all (as a job)
    # The longest audio /v1/predict takes: 30 s is about 0.3 s of work for the default model on
    # 2 cores, so clients looping long files cannot starve short requests (longer: /v1/jobs).
    max_sync_duration_s: float = 30.0
    timeout_s: float = 60.0
    max_concurrency: int = 2
    max_jobs: int = 8  # queued or running; more get 429
    job_ttl_s: float = 3600.0
    max_streams: int = 4  # live streams at once (WS /v1/stream); more get 1013
    max_stream_s: float = 3600.0  # the longest live stream
    max_frame_bytes: int = 1 << 20  # one binary frame of a live stream
    stream_idle_s: float = 30.0  # a live stream without a frame this long is closed


class ModelState:
    """The recognizer, loaded and warmed in the background so that the server answers
    /v1/health ("loading") at once, and the first request is as fast as the tenth."""

    def __init__(self, config: ServerConfig, recognizer=None):
        self.recognizer, self.error = recognizer, None
        self.ready = threading.Event()
        if recognizer is not None:
            self.ready.set()
        else:
            threading.Thread(target=self._load, args=(config,), daemon=True).start()

    def model_or_503(self):
        if not self.ready.is_set():
            raise BadInput(503, "the model is still loading: try again in a few seconds")
        if self.recognizer is None:
            raise BadInput(503, f"the model could not be loaded: {self.error}")
        return self.recognizer

    def _load(self, config: ServerConfig) -> None:
        from importlib.resources import files

        try:
            recognizer = EmotionRecognizer.load(config.model)
            recognizer.predict(str(files("ser") / "examples" / "speech_example.wav"))  # warm
            self.recognizer = recognizer
            log.info("model loaded and warm")
        except Exception as exc:  # reported by /v1/health; the server stays up to say so
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("model could not be loaded: %s", self.error)
        finally:
            self.ready.set()


class Jobs:
    """A bounded queue of long analyses with one worker thread; results expire."""

    def __init__(self, state: ModelState, config: ServerConfig):
        self.state, self.config = state, config
        self.jobs: dict[str, dict] = {}
        # A named speaker's session so far (the utterances of his finished jobs) and when it
        # was last used; it expires like a job's result.
        self.speakers: dict[str, tuple] = {}
        self.pending: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        threading.Thread(target=self._work, daemon=True).start()

    def submit(self, data: bytes, name: "str | None", speaker: "str | None" = None) -> "dict | None":
        with self.lock:
            self._expire()
            active = sum(j["status"] in ("queued", "running") for j in self.jobs.values())
            if active >= self.config.max_jobs:
                return None
            job = {"id": uuid.uuid4().hex, "status": "queued", "progress": 0.0, "name": name,
                   "created": time.time(), "finished": None, "result": None, "error": None,
                   "speaker": speaker}
            self.jobs[job["id"]] = job
        self.pending.put((job["id"], data))
        return job

    def get(self, job_id: str) -> "dict | None":
        with self.lock:
            self._expire()
            return self.jobs.get(job_id)

    def _expire(self) -> None:
        now = time.time()
        for job_id in [k for k, j in self.jobs.items()
                       if j["finished"] and now - j["finished"] > self.config.job_ttl_s]:
            del self.jobs[job_id]
        for name in [k for k, (_, used) in self.speakers.items() if now - used > self.config.job_ttl_s]:
            del self.speakers[name]

    def _work(self) -> None:
        import os

        try:  # Linux: nice applies per thread; jobs yield the CPU to short requests
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 15)
        except (AttributeError, OSError):
            pass
        while True:
            job_id, data = self.pending.get()
            job = self.jobs.get(job_id)
            if job is None:
                continue
            job["status"] = "running"
            self.state.ready.wait()
            try:
                if self.state.recognizer is None:
                    raise RuntimeError(self.state.error or "model not loaded")
                result = self.state.recognizer.predict(
                    data, max_duration_s=self.config.max_duration_s,
                    on_progress=lambda f: job.__setitem__("progress", round(float(f), 3)))
                if job["speaker"] is not None:  # one worker: a speaker's jobs in their order
                    with self.lock:
                        earlier = self.speakers.get(job["speaker"], (None, 0))[0]
                        result, now = self.state.recognizer.adapt_after(result, earlier)
                        self.speakers[job["speaker"]] = (now, time.time())
                job["result"] = {**result.to_dict(), "path": safe_name(job["name"])}
                job["status"], job["progress"] = "done", 1.0
            except AudioError as exc:
                job["status"], job["error"] = "failed", str(exc)
            except Exception as exc:  # noqa: BLE001 - a job must never kill the worker
                log.exception("job %s failed", job_id)
                job["status"], job["error"] = "failed", f"internal error: {type(exc).__name__}"
            job["finished"] = time.time()


#: Seconds a client is asked to wait (``Retry-After``) when the server or the job queue is full.
RETRY_AFTER_S = 10


class BadInput(Exception):
    def __init__(self, status: int, message: str, retry_after: "int | None" = None):
        self.status, self.message, self.retry_after = status, message, retry_after


def _schemas():
    class Segment(BaseModel):
        start_s: float
        end_s: float
        emotion: str
        confidence: float

    class PredictionOut(BaseModel):
        path: "str | None" = Field(description="the uploaded file's name, if given")
        emotion: str = Field(description=f"one of {', '.join(EMOTIONS)}, or no_speech")
        confidence: float
        uncertain: bool = Field(description="the top probability is below the model's threshold: "
                                            "more likely wrong than right")
        probabilities: dict[str, float]
        duration_s: float
        speech_s: float = Field(description="seconds the voice activity detector found speech in")
        emotion_shares: dict[str, float] = Field(
            description="share of the speaking time whose utterance's top emotion is each label")
        segments: list[Segment]
        warnings: list[str] = Field(description='"truncated": the file ended before its header '
                                                "said; what decoded cleanly was analysed")
        summary: str = Field(description="what to read first: the emotion, or \"mixed\" for a "
                                         "recording in which no emotion has 60% of the speaking "
                                         "time, or no_speech")
        summary_share: float = Field(description="share of the speaking time of the summary's "
                                                 "emotion (the largest share when mixed)")
        adapted: bool = Field(description="answered adapted to its speaker: the recording's own "
                                          "utterances (or the files given the same speaker) had "
                                          "spread emotions, so their mean voice was removed")
        adapted_utterances: int = Field(description="utterances of the session it was adapted "
                                                    "over (0: not adapted)")
        model: str = Field(description="the model that answered: a shipped model's name or the "
                                       "bundle folder's name")
        model_version: str = Field(description="the exact model: 12 hex digits of the sha256 of "
                                               "its config.json, which holds its weights' hashes")

    class JobOut(BaseModel):
        id: str
        status: str = Field(description="queued, running, done or failed")
        progress: float
        result: "PredictionOut | None" = None
        error: "str | None" = None

    class ErrorOut(BaseModel):
        error: str

    return PredictionOut, JobOut, ErrorOut


AUDIO_BODY = {"requestBody": {"content": {
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "string", "format": "binary"}}, "required": ["file"]}},
    "audio/wav": {"schema": {"type": "string", "format": "binary"}},
}, "required": True}}


def create_app(config: ServerConfig | None = None, recognizer=None):
    config = config or ServerConfig()
    state = ModelState(config, recognizer)
    jobs = Jobs(state, config)
    limit_bytes = int(config.max_upload_mb * 1024 * 1024)
    slots = asyncio.Semaphore(config.max_concurrency)
    PredictionOut, JobOut, ErrorOut = _schemas()
    errors = {code: {"model": ErrorOut} for code in (400, 404, 413, 415, 422, 429, 503)}
    # Swagger UI and ReDoc served from the package (fastapi-offline), not a CDN: /docs works
    # offline, and its Swagger UI reads FastAPI's OpenAPI 3.1.
    app = FastAPIOffline(title="ser", version=__version__,
                         description="Speech emotion recognition: eight emotions from speech, offline.")
    _add_error_handlers(app)

    model_or_503 = state.model_or_503
    _add_info_routes(app, state, config)
    add_stream_route(app, state, config)

    @app.get("/live", include_in_schema=False)
    async def live_page():
        from importlib.resources import files

        return HTMLResponse((files("ser") / "interfaces" / "static" / "live.html").read_text("utf-8"))

    @app.post("/v1/predict", response_model=PredictionOut, responses=errors,
              openapi_extra=AUDIO_BODY)
    async def predict(request: Request):
        rec = model_or_503()
        data, name = await _read_body(request, limit_bytes, config.max_upload_mb)
        try:
            await asyncio.wait_for(slots.acquire(), timeout=config.timeout_s)
        except asyncio.TimeoutError:
            raise BadInput(503, "server busy: try again later", RETRY_AFTER_S) from None
        # The slot is released when the work really ends, not when a timed-out request gives
        # up on it: the bound on concurrent CPU work holds even under time-outs.
        work = asyncio.ensure_future(
            run_in_threadpool(rec.predict, data, max_duration_s=config.max_sync_duration_s))
        work.add_done_callback(lambda _: slots.release())
        try:
            result = await asyncio.wait_for(asyncio.shield(work), timeout=config.timeout_s)
        except AudioTooLongError as exc:
            raise BadInput(413, f"{exc}: /v1/predict takes up to {config.max_sync_duration_s:g} s "
                                f"of audio; POST it to /v1/jobs instead (up to "
                                f"{config.max_duration_s:g} s)") from None
        except AudioError as exc:
            raise BadInput(422, str(exc)) from None
        except asyncio.TimeoutError:
            raise BadInput(503, f"analysis took longer than {config.timeout_s:g} s") from None
        return {**result.to_dict(), "path": safe_name(name)}

    @app.post("/v1/jobs", status_code=202, response_model=JobOut, responses=errors,
              openapi_extra=AUDIO_BODY)
    async def submit_job(request: Request, speaker: "str | None" = Query(
            None, min_length=1, max_length=100,
            description="who speaks: a speaker's jobs are answered, in the order they were "
                        "sent, over the utterances of his jobs so far (adapted when their "
                        "emotions vary; the result's adapted_utterances says over how many)")):
        model_or_503()
        data, name = await _read_body(request, limit_bytes, config.max_upload_mb)
        # Refused now when the container declares its length, not a second after a 202.
        declared = await run_in_threadpool(declared_duration, data)
        if declared is not None and declared > config.max_duration_s:
            raise BadInput(413, f"audio lasts {declared:.1f} s, over this server's limit of "
                                f"{config.max_duration_s:g} s (--max-duration)")
        job = jobs.submit(data, name, speaker)
        if job is None:
            raise BadInput(429, f"{config.max_jobs} jobs are queued or running: try again later",
                           RETRY_AFTER_S)
        return _job_view(job)

    @app.get("/v1/jobs/{job_id}", response_model=JobOut, responses=errors)
    async def job_status(job_id: str):
        job = jobs.get(job_id)
        if job is None:
            raise BadInput(404, "no such job (unknown, or expired)")
        return _job_view(job)

    return app


def _add_info_routes(app, state: ModelState, config: ServerConfig) -> None:
    @app.get("/v1/health")
    async def health():
        status = "ok" if state.recognizer else "loading" if not state.ready.is_set() else "error"
        body = {"status": status, "version": __version__}
        if state.error:
            body["error"] = state.error
        return JSONResponse(body, status_code=200 if status == "ok" else 503)

    @app.get("/v1/model")
    async def model_info() -> dict:
        rec = state.model_or_503()
        cfg = rec.bundle.config
        return {
            "labels": cfg["labels"], "version": __version__, "ser_version": cfg.get("ser_version"),
            "arch": cfg["arch"], "frontend": rec.bundle.frontend,
            "feature_config": cfg["feature_config"], "metrics": cfg.get("metrics", {}),
            "temperature": cfg.get("temperature"), "uncertain_below": rec.uncertain_below,
            "limits": {"max_upload_mb": config.max_upload_mb,
                       "max_sync_duration_s": config.max_sync_duration_s,
                       "max_duration_s": config.max_duration_s, "timeout_s": config.timeout_s,
                       "max_jobs": config.max_jobs, "job_ttl_s": config.job_ttl_s},
        }


def _job_view(job: dict) -> dict:
    return {k: job[k] for k in ("id", "status", "progress", "result", "error")}


def _add_error_handlers(app) -> None:
    @app.exception_handler(BadInput)
    async def _bad_input(_request, exc: BadInput):
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request, exc):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request, exc):
        return JSONResponse({"error": "invalid request: " + "; ".join(
            str(e.get("msg", e)) for e in exc.errors())}, status_code=422)


async def _read_body(request: Request, limit_bytes: int, limit_mb: float) -> tuple[bytes, "str | None"]:
    too_large = BadInput(413, f"upload is larger than the limit of {limit_mb:g} MB")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit_bytes + 64 * 1024:
        raise too_large
    ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    try:
        if ctype.startswith("multipart/form-data"):
            form = await request.form(max_files=1, max_fields=4, max_part_size=limit_bytes + 1)
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise BadInput(422, "multipart upload needs the audio in a field named 'file'")
            data, name = await upload.read(limit_bytes + 1), upload.filename
        elif not ctype or any(ctype.startswith(t) for t in AUDIO_TYPES):
            # No type at all (curl --data-binary without -H): the bytes decide, as for a file.
            chunks, size = [], 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit_bytes:
                    raise too_large
                chunks.append(chunk)
            data, name = b"".join(chunks), request.headers.get("x-filename")
        else:
            raise BadInput(415, f"content type '{ctype or 'none'}' is not audio; send an audio "
                                "file as multipart/form-data (field 'file') or with an audio/* type")
    except ClientDisconnect:
        # One line, not a traceback: slow or dropped clients are ordinary on a network.
        log.info("client %s disconnected during the upload", request.client.host if request.client else "?")
        raise BadInput(400, "client disconnected during the upload") from None
    if len(data) > limit_bytes:
        raise too_large
    if not data:
        raise BadInput(422, "the upload is empty")
    return data, name


def safe_name(name: "str | None") -> "str | None":
    """A client's file name, safe to echo: its last path part, printable ASCII letters, digits
    and ``._-() `` only, at most 120 characters."""
    import re

    if not name:
        return None
    base = re.split(r"[\\/]", name)[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._() -]", "_", base)[:120].strip(" .")
    return cleaned or None


def serve(host: str = "127.0.0.1", port: int = 8000, config: ServerConfig | None = None) -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    uvicorn.run(create_app(config), host=host, port=port, log_level="info")
