"""REST endpoints: enhance a file, list models, health, readiness, metrics."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Annotated, Any, Literal

import soundfile as sf
from fastapi import APIRouter, Depends, Query, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from hush.streaming import Enhancer
from hush.streaming.audio_io import (
    AudioFileError,
    AudioInfo,
    UnsupportedFormatError,
    enhance_signal,
    read_audio,
    write_audio,
)

from .errors import ErrorBody, api_error

log = logging.getLogger("hush.service")

# Raw bodies: Content-Type values accepted (the bytes decide the actual format).
RAW_AUDIO_TYPES = {
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/vnd.wave",
    "audio/flac",
    "audio/x-flac",
    "audio/ogg",
    "audio/opus",
    "application/ogg",
    "application/octet-stream",
}
CONTAINERS = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG"}
MEDIA_TYPES = {"WAV": "audio/wav", "FLAC": "audio/flac", "OGG": "audio/ogg"}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key (when enabled).")
_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token (when enabled).")


def require_key(
    request: Request,
    api_key: Annotated[str | None, Security(_api_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> None:
    """401 unless keys are off or the request carries a valid one."""
    keys = request.app.state.hush.keys
    candidate = api_key or (bearer.credentials if bearer else None)
    if not keys.check(candidate):
        raise api_error("unauthorized", "missing or invalid API key")


router = APIRouter()
v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_key)], responses=_errors(401))


# ---------------------------------------------------------------------------- models
class ModelInfo(BaseModel):
    name: str
    kind: str = Field(description="Family and cell, e.g. recurrent/gru or spliced/dnn.")
    description: str
    parameters: int
    latency_ms: float = Field(description="Algorithmic latency (window plus lookahead).")
    sample_rate: int = Field(
        description="The model's own rate. Higher rates run full band at their own rate where the "
        "model's windows are whole numbers of samples there (24, 32, 44.1, 48 kHz ...); other rates "
        "are resampled."
    )
    precision: str = Field(
        description="The weights this server runs: int8 (each weight rounded to 8 bits per output "
        "channel, the default) or float32 (the weight file's own numbers; HUSH_PRECISION)."
    )
    test_scores: dict[str, float]
    val_loss: float | None
    default: bool


class ModelList(BaseModel):
    default: str
    models: list[ModelInfo]


@v1.get("/models", response_model=ModelList, summary="The models this server can use")
async def list_models(request: Request) -> ModelList:
    state = request.app.state.hush
    models = []
    for name in sorted(state.metadata):
        meta = state.metadata[name]
        arch = meta.architecture
        cell = getattr(arch, "cell", None)
        enhancer = state.enhancers.get(name)
        models.append(
            ModelInfo(
                name=name,
                kind=arch.family + (f"/{cell}" if cell else ""),
                description=meta.description,
                parameters=meta.num_parameters,
                latency_ms=meta.latency_ms,
                sample_rate=meta.features.sample_rate,
                precision=enhancer.precision if enhancer is not None else state.settings.precision,
                test_scores=meta.provenance.test_scores,
                val_loss=meta.provenance.val_loss,
                default=name == state.settings.default_model,
            )
        )
    return ModelList(default=state.settings.default_model, models=models)


# ---------------------------------------------------------------------------- enhance
async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise api_error("body_too_large", f"request body is {int(declared)} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise api_error("body_too_large", f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _from_multipart(request: Request, body: bytes) -> tuple[bytes, str]:
    """The first file part of a multipart body and its Content-Type."""

    async def once() -> AsyncIterator[bytes]:
        yield body

    try:
        form = await MultiPartParser(request.headers, once(), max_files=1, max_fields=16).parse()
    except (MultiPartException, ValueError, KeyError) as err:
        raise api_error("malformed_request", f"malformed multipart body: {err}") from None
    try:
        upload = next((v for v in form.values() if isinstance(v, UploadFile)), None)
        if upload is None:
            raise api_error("malformed_request", "the multipart body holds no file part")
        data = await upload.read()
        return data, (upload.content_type or "application/octet-stream")
    finally:
        await form.close()


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _output_info(info: AudioInfo, fmt: str | None) -> AudioInfo:
    """Same container and subtype as the input, unless ``fmt`` asks for another container."""
    if fmt is None or CONTAINERS[fmt] == info.format:
        return info
    container = CONTAINERS[fmt]
    subtype = info.subtype if sf.check_format(container, info.subtype) else sf.default_subtype(container)
    return replace(info, format=container, subtype=subtype)


def enhance_bytes(
    enhancer: Enhancer,
    data: bytes,
    fmt: str | None,
    attenuation_limit_db: float | None,
    max_duration_s: float,
) -> tuple[bytes, AudioInfo]:
    """Decode, enhance and re-encode one file (runs in a worker thread).

    Returns the encoded output and its ``AudioInfo``. Raises ``ApiError``.
    """
    try:
        header = sf.info(io.BytesIO(data))
    except Exception:  # read_audio below says precisely what is wrong
        header = None
    if header is not None and header.samplerate > 0 and header.frames / header.samplerate > max_duration_s:
        raise api_error(
            "audio_too_long",
            f"audio is {header.frames / header.samplerate:.1f} s long; the limit is {max_duration_s:g} s",
        )
    try:
        audio, info = read_audio(data)
    except UnsupportedFormatError as err:
        # A container libsndfile knows but hush does not serve (AIFF, MP3...) is 415;
        # bytes libsndfile cannot make sense of at all are 400.
        if isinstance(err.__cause__, sf.LibsndfileError):
            raise api_error("unreadable_audio", "the body is not a readable WAV, FLAC or Ogg file") from None
        raise api_error("unsupported_format", str(err).removeprefix("<bytes>: ")) from None
    except AudioFileError as err:
        raise api_error("unreadable_audio", str(err).removeprefix("<bytes>: ")) from None
    if info.duration_s > max_duration_s:
        raise api_error(
            "audio_too_long", f"audio is {info.duration_s:.1f} s long; the limit is {max_duration_s:g} s"
        )
    enhanced = enhance_signal(enhancer, audio, info.sample_rate, attenuation_limit_db)
    out_info = _output_info(info, fmt)
    buffer = io.BytesIO()
    try:
        write_audio(buffer, enhanced, out_info)
    except (sf.LibsndfileError, ValueError, TypeError) as err:
        raise api_error(
            "invalid_parameter", f"cannot write {info.sample_rate} Hz audio as {out_info.format}: {err}"
        ) from None
    return buffer.getvalue(), out_info


_AUDIO_BODY = {
    "requestBody": {
        "required": True,
        "description": "An audio file (WAV, FLAC, Ogg Vorbis/Opus; any rate, any channel count), "
        "raw with its Content-Type, or as the file part of a multipart upload.",
        "content": {
            "audio/wav": {"schema": {"type": "string", "format": "binary"}},
            "audio/flac": {"schema": {"type": "string", "format": "binary"}},
            "audio/ogg": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


@v1.post(
    "/enhance",
    summary="Enhance an audio file",
    response_class=Response,
    responses={
        200: {
            "description": "The enhanced audio: same rate, channels and length as the input, "
            "time-aligned, in the input's format unless `format` says otherwise.",
            "content": {"audio/wav": {}, "audio/flac": {}, "audio/ogg": {}},
        },
        **_errors(400, 413, 415, 422, 503),
    },
    openapi_extra=_AUDIO_BODY,
)
async def enhance(
    request: Request,
    model: Annotated[
        str | None, Query(max_length=64, description="Model name (see /v1/models); default model if absent.")
    ] = None,
    format: Annotated[
        Literal["wav", "flac", "ogg"] | None, Query(description="Output container; default: the input's.")
    ] = None,
    attenuation_limit_db: Annotated[
        float | None,
        Query(ge=0, le=200, description="Cap on noise attenuation in dB (default: unlimited)."),
    ] = None,
) -> Response:
    state = request.app.state.hush
    if not state.ready:
        raise api_error("not_ready", "the server is starting or stopping")
    name, enhancer = state.enhancer(model)
    settings = state.settings
    if state.rest_jobs >= settings.max_rest_jobs:
        # Each job holds its body (up to max_body_bytes) in memory: bound how many wait.
        raise api_error(
            "overloaded", f"{settings.max_rest_jobs} requests are already in progress; retry later"
        )
    state.rest_jobs += 1
    try:
        return await _enhance(request, state, name, enhancer, format, attenuation_limit_db)
    finally:
        state.rest_jobs -= 1


async def _enhance(
    request: Request,
    state: Any,
    name: str,
    enhancer: Enhancer,
    format: str | None,
    attenuation_limit_db: float | None,
) -> Response:
    settings = state.settings
    body = await _read_body(request, settings.max_body_bytes)
    content_type = _media_type(request.headers.get("content-type", "application/octet-stream"))
    if content_type == "multipart/form-data":
        body, content_type = await _from_multipart(request, body)
        content_type = _media_type(content_type)
    if content_type not in RAW_AUDIO_TYPES:
        raise api_error(
            "unsupported_format",
            f"unsupported Content-Type {content_type[:80]!r}; send WAV, FLAC or Ogg "
            "(audio/wav, audio/flac, audio/ogg or application/octet-stream)",
        )
    if not body:
        raise api_error("unreadable_audio", "the request holds no audio")
    loop = asyncio.get_running_loop()
    payload, info = await loop.run_in_executor(
        state.rest_executor,
        enhance_bytes,
        enhancer,
        body,
        format,
        attenuation_limit_db,
        settings.max_duration_s,
    )
    state.metrics.enhanced_seconds.inc(info.duration_s)
    processing_rate = enhancer.processing_rate(info.sample_rate)
    return Response(
        payload,
        media_type=MEDIA_TYPES[info.format],
        headers={
            "X-Hush-Model": name,
            "X-Hush-Duration-S": f"{info.duration_s:.3f}",
            # the algorithmic latency a live stream at this rate would have, and the rate the
            # engine ran at (the file's own where it is full band)
            "X-Hush-Latency-Ms": f"{enhancer.at_rate(processing_rate).latency_ms:.1f}",
            "X-Hush-Processing-Rate": str(processing_rate),
            "X-Hush-Precision": enhancer.precision,
        },
    )


router.include_router(v1)


# ---------------------------------------------------------------------------- operations
class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    models: list[str]
    sessions: int


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Ready,
    summary="Readiness: models loaded, scheduler running",
    responses=_errors(503),
)
async def readyz(request: Request) -> Any:
    state = request.app.state.hush
    if not (state.ready and state.scheduler is not None and state.scheduler.running):
        body = ErrorBody(code="not_ready", message="models are loading or the server is stopping", status=503)
        return JSONResponse(body.model_dump(), status_code=503)
    return Ready(status="ready", models=sorted(state.enhancers), sessions=len(state.scheduler.sessions))


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    dependencies=[Depends(require_key)],
    responses={200: {"content": {"text/plain": {}}}, **_errors(401)},
)
async def metrics(request: Request) -> Response:
    registry = request.app.state.hush.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
