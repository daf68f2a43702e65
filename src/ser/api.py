"""HTTP API (FastAPI): ``ser serve``.

    POST /v1/predict   audio as a multipart upload (field "file") or as the raw body with an
                       audio content type -> the JSON object of ``ser predict --format jsonl``
    GET  /v1/health    liveness
    GET  /v1/model     labels, feature config, metrics, versions
    GET  /docs, /openapi.json

Bad input always gets a 4xx JSON error ``{"error": "..."}``: 413 for an upload over the size
limit, 415 for a body that is not audio by its content type, 422 for audio that cannot be
analysed (empty, not audio, truncated, too short, too long, non-finite). CPU work runs in a
thread pool, at most ``max_concurrency`` at a time; a request waiting or running longer than
``timeout_s`` gets 503. The model is loaded once, at start-up.
"""

import asyncio
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import EMOTIONS, __version__
from .audio import AudioError

AUDIO_TYPES = ("audio/", "video/mp4", "video/webm", "application/ogg", "application/octet-stream")


@dataclass
class ServerConfig:
    model: "str | None" = None
    max_upload_mb: float = 25.0
    max_duration_s: float = 600.0
    timeout_s: float = 60.0
    max_concurrency: int = 2


def create_app(config: ServerConfig | None = None, recognizer=None):
    from .inference import EmotionRecognizer

    config = config or ServerConfig()
    recognizer = recognizer or EmotionRecognizer.load(config.model)
    limit_bytes = int(config.max_upload_mb * 1024 * 1024)
    slots = asyncio.Semaphore(config.max_concurrency)

    class Segment(BaseModel):
        start_s: float
        end_s: float
        emotion: str
        confidence: float

    class PredictionOut(BaseModel):
        path: str | None = Field(description="the uploaded file's name, if given")
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

    class ErrorOut(BaseModel):
        error: str

    errors = {code: {"model": ErrorOut} for code in (400, 413, 415, 422, 503)}
    app = FastAPI(title="ser", version=__version__,
                  description="Speech emotion recognition: eight emotions from speech, offline.")

    class BadInput(Exception):
        def __init__(self, status: int, message: str):
            self.status, self.message = status, message

    @app.exception_handler(BadInput)
    async def _bad_input(_request, exc: BadInput):
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request, exc):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request, exc):
        return JSONResponse({"error": "invalid request: " + "; ".join(
            str(e.get("msg", e)) for e in exc.errors())}, status_code=422)

    @app.get("/v1/health")
    async def health() -> dict:
        return {"status": "ok", "version": __version__}

    @app.get("/v1/model")
    async def model_info() -> dict:
        cfg = recognizer.bundle.config
        return {
            "labels": cfg["labels"], "version": __version__, "ser_version": cfg.get("ser_version"),
            "arch": cfg["arch"], "frontend": recognizer.bundle.frontend,
            "feature_config": cfg["feature_config"], "metrics": cfg.get("metrics", {}),
            "temperature": cfg.get("temperature"),
            "limits": {"max_upload_mb": config.max_upload_mb,
                       "max_duration_s": config.max_duration_s, "timeout_s": config.timeout_s},
        }

    async def _read_body(request: Request) -> tuple[bytes, str | None]:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit_bytes + 64 * 1024:
            raise BadInput(413, f"upload is larger than the limit of {config.max_upload_mb:g} MB")
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if ctype.startswith("multipart/form-data"):
            form = await request.form(max_files=1, max_fields=4, max_part_size=limit_bytes + 1)
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise BadInput(422, "multipart upload needs the audio in a field named 'file'")
            data = await upload.read(limit_bytes + 1)
            name = upload.filename
        elif any(ctype.startswith(t) for t in AUDIO_TYPES):
            chunks, size = [], 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit_bytes:
                    raise BadInput(413, f"upload is larger than the limit of {config.max_upload_mb:g} MB")
                chunks.append(chunk)
            data, name = b"".join(chunks), request.headers.get("x-filename")
        else:
            raise BadInput(415, f"content type '{ctype or 'none'}' is not audio; send an audio "
                                "file as multipart/form-data (field 'file') or with an audio/* type")
        if len(data) > limit_bytes:
            raise BadInput(413, f"upload is larger than the limit of {config.max_upload_mb:g} MB")
        if not data:
            raise BadInput(422, "the upload is empty")
        return data, name

    @app.post("/v1/predict", response_model=PredictionOut, responses=errors,
              openapi_extra={"requestBody": {"content": {
                  "multipart/form-data": {"schema": {"type": "object", "properties": {
                      "file": {"type": "string", "format": "binary"}}, "required": ["file"]}},
                  "audio/wav": {"schema": {"type": "string", "format": "binary"}},
              }, "required": True}})
    async def predict(request: Request):
        data, name = await _read_body(request)
        try:
            await asyncio.wait_for(slots.acquire(), timeout=config.timeout_s)
        except asyncio.TimeoutError:
            raise BadInput(503, "server busy: try again later") from None
        # The slot is released when the work really ends, not when a timed-out request gives
        # up on it: the bound on concurrent CPU work holds even under time-outs.
        work = asyncio.ensure_future(
            run_in_threadpool(recognizer.predict, data, max_duration_s=config.max_duration_s))
        work.add_done_callback(lambda _: slots.release())
        try:
            result = await asyncio.wait_for(asyncio.shield(work), timeout=config.timeout_s)
        except AudioError as exc:
            raise BadInput(422, str(exc)) from None
        except asyncio.TimeoutError:
            raise BadInput(503, f"analysis took longer than {config.timeout_s:g} s") from None
        return {**result.to_dict(), "path": safe_name(name)}

    return app


def safe_name(name: str | None) -> str | None:
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

    uvicorn.run(create_app(config), host=host, port=port, log_level="info")

