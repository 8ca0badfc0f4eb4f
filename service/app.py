"""The FastAPI app factory: models load once in the lifespan hook; REST, WebSocket, metrics."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import ApiKeys
from .errors import ApiError, ErrorBody, api_error
from .metrics import Metrics
from .rest import router as rest_router
from .scheduler import ProcessWorker, Scheduler, ThreadWorker
from .settings import Settings
from .state import AppState, load_models
from .ws import router as ws_router
from .ws import watchdog

log = logging.getLogger("hush.service")


def _error_response(state: AppState, status: int, code: str, message: str) -> JSONResponse:
    state.metrics.errors.labels("rest", code).inc()
    return JSONResponse(ErrorBody(code=code, message=message, status=status).model_dump(), status_code=status)


class RequestMetricsMiddleware:
    """Counts HTTP requests by route template (not raw path: bounded label values) and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], path, str(status["code"])).inc()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. Models load when the app starts (lifespan), not here."""
    settings = settings or Settings()
    logging.getLogger("hush").setLevel(settings.log_level.upper())
    state = AppState(settings=settings, metrics=Metrics(), keys=ApiKeys(settings.api_keys))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        torch.set_num_threads(settings.torch_threads)
        started = time.perf_counter()
        await asyncio.to_thread(load_models, state)
        tick = settings.tick_interval_ms / 1000.0
        if settings.worker == "process":
            spec = {
                "models_dir": [str(d) for d in settings.models_dir],
                "include_shipped": settings.include_shipped,
                "models": sorted(state.enhancers),
                "torch_threads": settings.torch_threads,
                "precision": settings.precision,
            }
            workers = [ProcessWorker(spec) for _ in range(settings.worker_count)]
            state.scheduler = Scheduler(
                state.metrics, workers, restart=lambda: ProcessWorker(spec), tick_interval_s=tick
            )
        else:
            state.scheduler = Scheduler(state.metrics, ThreadWorker(state.enhancers), tick_interval_s=tick)
        await state.scheduler.start()
        watchdog_task = asyncio.create_task(watchdog(state), name="hush-watchdog")
        state.rest_executor = ThreadPoolExecutor(settings.rest_workers, thread_name_prefix="hush-rest")
        # Move everything alive after start-up (torch, the models, the app) out of the
        # collector's sight: otherwise each full collection walks those millions of objects
        # and stalls the event loop, and every live stream, for tens of milliseconds.
        gc.collect()
        gc.freeze()
        state.ready = True
        log.info("ready in %.1f s", time.perf_counter() - started)
        try:
            yield
        finally:
            state.ready = False
            watchdog_task.cancel()
            for task in list(state.tasks):
                task.cancel()
            await state.scheduler.stop()
            state.rest_executor.shutdown(wait=True, cancel_futures=True)

    app = FastAPI(
        title="hush",
        version="0.1.0",
        summary="Real-time speech enhancement over REST and WebSocket.",
        description="Enhance audio files with `POST /v1/enhance`, or stream audio over the "
        "WebSocket `/v1/stream` (protocol: docs/protocol.md). Errors are JSON with a stable `code`.",
        lifespan=lifespan,
    )
    app.state.hush = state

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, err: ApiError) -> JSONResponse:
        return _error_response(state, err.status, err.code, err.message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in err.errors()
        )
        return _error_response(state, 422, "invalid_parameter", problems or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
        response = _error_response(state, err.status_code, code, str(err.detail))
        if err.headers:
            response.headers.update(err.headers)
        return response

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, err: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error_response(state, 500, "internal_error", "internal server error")

    app.include_router(rest_router)
    app.include_router(ws_router)

    static_dir = settings.static_dir

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        """The browser demo (service/static/index.html)."""
        page = static_dir / "index.html"
        if not page.is_file():
            raise api_error("not_found", "no demo page is installed")
        return FileResponse(page, media_type="text/html")

    if static_dir.is_dir():
        app.mount("/static", StaticFiles(directory=static_dir), name="static")

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-API-Key", "Authorization"],
            # every header a /v1/enhance response carries, readable by browser code
            expose_headers=[
                "X-Hush-Model",
                "X-Hush-Duration-S",
                "X-Hush-Latency-Ms",
                "X-Hush-Processing-Rate",
                "X-Hush-Precision",
            ],
        )
    app.add_middleware(RequestMetricsMiddleware, metrics=state.metrics)
    return app
