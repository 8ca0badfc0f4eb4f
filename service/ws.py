"""The WebSocket ``/v1/stream``: live enhancement, protocol in docs/protocol.md.

One ``StreamHandler`` per connection. Its coroutine reads messages and queues audio for
the scheduler; a sender task writes the enhanced audio back. Whatever happens (an error,
a timeout, the client vanishing mid-stream), ``run`` ends by unregistering the session and
cancelling and awaiting the sender, so nothing of the session outlives the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt, StrictStr, ValidationError
from starlette.websockets import WebSocketState

from .auth import API_KEY_QUERY, ApiKeys
from .engine import ENCODINGS, check_audio
from .errors import ApiError, Close, StreamError
from .scheduler import Session
from .state import AppState

log = logging.getLogger("hush.service")
router = APIRouter()

MIN_RATE, MAX_RATE = 8000, 48000


class StartMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: StrictStr
    sample_rate: StrictInt
    encoding: StrictStr
    channels: StrictInt = 1
    model: StrictStr | None = None
    attenuation_limit_db: StrictFloat | StrictInt | None = None


def _attenuation(value: Any) -> float | None:
    """A valid attenuation limit in dB (``None``: unlimited), else ``StreamError``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or value < 0:
        raise StreamError("invalid_parameter", "attenuation_limit_db must be a number >= 0 or null")
    return float(value)


def _describe(err: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())[:300]


class StreamHandler:
    def __init__(self, websocket: WebSocket, state: AppState) -> None:
        self.ws = websocket
        self.state = state
        self.settings = state.settings
        self.session: Session | None = None
        self.sender: asyncio.Task | None = None
        self.closed = False
        self.outcome = "disconnected"
        self.opened = time.monotonic()
        self._drained = asyncio.Event()
        self._backlog_limit = 0
        self.last_message = self.opened
        self.paused = False  # not reading the socket (back-pressure)
        self.expired: StreamError | None = None
        self.task: asyncio.Task | None = None

    def expire(self, now: float) -> None:
        """Called by the watchdog: end the session if it is idle or has run too long."""
        if self.closed or self.expired is not None or self.task is None:
            return
        settings = self.settings
        if now - self.opened > settings.max_session_s:
            self.expired = StreamError(
                "session_too_long", f"sessions are limited to {settings.max_session_s:g} s"
            )
        elif now - self.last_message > settings.idle_timeout_s:
            # While paused (back-pressure) last_message marks the start of the pause: a
            # client that reads none of its output for that long is as stuck as a silent one.
            what = "read of its output" if self.paused else "message"
            self.expired = StreamError(
                "idle_timeout", f"no {what} for {settings.idle_timeout_s:g} s; closing"
            )
        else:
            return
        self.task.cancel()

    # ------------------------------------------------------------------ entry point
    async def run(self) -> None:
        state = self.state
        state.connections += 1
        self.task = asyncio.current_task()
        state.handlers.add(self)
        try:
            await self._serve()
        except asyncio.CancelledError:
            if self.expired is None:  # a real cancellation (shutdown): let it through
                raise
            self.task.uncancel()
            await self._close_with_error(self.expired)
        except StreamError as err:
            await self._close_with_error(err)
        except WebSocketDisconnect:
            pass
        except Exception:
            log.exception("stream %s: internal error", self.session.id if self.session else "-")
            await self._close_with_error(StreamError("internal_error", "internal server error"))
        finally:
            state.handlers.discard(self)
            state.connections -= 1
            if self.session is not None and state.scheduler is not None:
                state.scheduler.remove(self.session)
            await self._stop_sender()
            state.metrics.sessions.labels(self.outcome).inc()

    async def _serve(self) -> None:
        state, settings = self.state, self.settings
        await self.ws.accept()
        candidate = ApiKeys.from_headers(self.ws.headers) or self.ws.query_params.get(API_KEY_QUERY)
        if not state.keys.check(candidate):
            raise StreamError("unauthorized", "missing or invalid API key")
        if not state.ready or state.scheduler is None:
            raise StreamError("shutting_down", "the server is starting or stopping")
        if state.connections > settings.max_sessions:
            raise StreamError("overloaded", f"the server is at its limit of {settings.max_sessions} streams")

        self.session = self._start_session(await self._receive())
        session = self.session
        state.scheduler.add(session)
        rate = session.sample_rate
        processing_rate = session.enhancer.processing_rate(rate)
        engine = session.enhancer.at_rate(processing_rate)  # what runs this stream
        await self.ws.send_text(
            json.dumps(
                {
                    "type": "ready",
                    "session_id": session.id,
                    "model": session.model,
                    "sample_rate": rate,
                    "encoding": session.encoding,
                    # algorithmic latency at the stream's rate (20 ms for the shipped models,
                    # full band included; resampled rates add about 3 ms per direction)
                    "latency_ms": engine.latency_ms,
                    "frame_samples": round(engine.hop * rate / processing_rate),
                    # Output trails input by this many samples (exact where the stream is
                    # not resampled; the resamplers add about 3 ms per direction otherwise).
                    "delay_samples": round(engine.output_delay * rate / processing_rate),
                    # the rate the engine runs at: the stream's own (native: nothing
                    # resampled; above the model's rate the whole band is kept and denoised)
                    "processing_rate": processing_rate,
                    "full_band": processing_rate == rate and rate > engine.model_rate,
                    # the weights' precision: "int8" (default) or "float32" (HUSH_PRECISION)
                    "precision": engine.precision,
                }
            )
        )
        self.sender = asyncio.create_task(self._send_loop(), name=f"hush-sender-{session.id}")
        state.tasks.add(self.sender)
        self.sender.add_done_callback(state.tasks.discard)

        while not self.closed:
            message = await self._receive()
            if self.closed:
                return
            payload = message.get("bytes")
            if payload is not None:
                await self._on_audio(payload)
            elif await self._on_control(message.get("text") or ""):
                return

    # ------------------------------------------------------------------ inbound
    async def _receive(self) -> dict[str, Any]:
        """The next message. Idle and session-length limits are enforced by the watchdog
        (``expire``), not by a timer per message: that would cost more than the message."""
        message = await self.ws.receive()
        self.last_message = time.monotonic()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", Close.NORMAL))
        size = len(message["bytes"]) if message.get("bytes") is not None else len(message.get("text") or "")
        if size > self.settings.max_message_bytes or (
            message.get("text")
            and len(message["text"].encode("utf-8", "surrogatepass")) > self.settings.max_message_bytes
        ):
            raise StreamError(
                "message_too_large", f"messages are limited to {self.settings.max_message_bytes} bytes"
            )
        return message

    def _start_session(self, message: dict[str, Any]) -> Session:
        if message.get("bytes") is not None:
            raise StreamError(
                "malformed_message", "audio before start: the first message must be a JSON start"
            )
        data = self._parse_json(message.get("text") or "")
        if data.get("type") != "start":
            raise StreamError("malformed_message", 'the first message must be {"type": "start", ...}')
        try:
            start = StartMessage.model_validate(data)
        except ValidationError as err:
            raise StreamError("malformed_message", f"invalid start message: {_describe(err)}") from None
        if start.encoding not in ENCODINGS:
            raise StreamError(
                "unsupported_format", f"encoding {start.encoding[:40]!r} is not one of {', '.join(ENCODINGS)}"
            )
        if start.channels != 1:
            raise StreamError(
                "unsupported_format",
                f"channels={start.channels}: streams are mono; send one stream per channel",
            )
        if not MIN_RATE <= start.sample_rate <= MAX_RATE:
            raise StreamError(
                "unsupported_format", f"sample_rate {start.sample_rate} is outside {MIN_RATE}..{MAX_RATE} Hz"
            )
        try:
            name, enhancer = self.state.enhancer(start.model)
        except ApiError as err:
            raise StreamError("unknown_model", err.message) from None
        limit = _attenuation(start.attenuation_limit_db)
        self._backlog_limit = int(self.settings.max_backlog_s * start.sample_rate)
        return Session(
            model=name,
            enhancer=enhancer,
            encoding=start.encoding,
            sample_rate=start.sample_rate,
            attenuation_limit_db=limit,
        )

    @staticmethod
    def _parse_json(text: str) -> dict[str, Any]:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise StreamError("malformed_message", "text messages must be JSON objects") from None
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise StreamError("malformed_message", 'text messages must be JSON objects with a "type"')
        return data

    async def _on_audio(self, payload: bytes) -> None:
        session = self.session
        assert session is not None
        t_recv = self.last_message
        try:
            n_samples = check_audio(payload, session.encoding)
        except ValueError as err:
            raise StreamError("malformed_message", str(err)) from None
        if not n_samples:
            return
        session.samples_received += n_samples
        self.state.scheduler.submit(session, ("audio", payload, t_recv))
        if session.in_flight > self._backlog_limit:
            # Back-pressure: stop reading this socket until the output has caught up. The
            # idle timeout then counts from the start of the pause (see expire).
            self.paused = True
            self.last_message = time.monotonic()
            try:
                while session.in_flight > self._backlog_limit and not self.closed:
                    self._drained.clear()
                    await self._drained.wait()
            finally:
                self.paused = False
                self.last_message = time.monotonic()

    async def _on_control(self, text: str) -> bool:
        """Handle a JSON control message; True when the session is over (``end``)."""
        data = self._parse_json(text)
        kind = data["type"]
        scheduler = self.state.scheduler
        if kind == "configure":
            if "attenuation_limit_db" not in data:
                raise StreamError(
                    "malformed_message", "configure needs attenuation_limit_db (a number or null)"
                )
            limit = _attenuation(data["attenuation_limit_db"])
            self.session.attenuation_limit_db = limit
            scheduler.submit(self.session, ("configure", limit))
            return False
        if kind == "stats":
            scheduler.submit(self.session, ("stats",))
            return False
        if kind == "end":
            scheduler.submit(self.session, ("end",))
            await self._finish()
            return True
        if kind == "start":
            raise StreamError("malformed_message", "start sent twice")
        raise StreamError("malformed_message", f"unknown message type {kind[:40]!r}")

    async def _finish(self) -> None:
        """After ``end``: wait until the sender has flushed and sent ``done``, then close 1000."""
        left = self.settings.max_session_s - (time.monotonic() - self.opened)
        try:
            async with asyncio.timeout(max(left, 0.0) + 5.0):
                await asyncio.shield(self.sender)
        except TimeoutError:
            raise StreamError("session_too_long", "the stream did not finish in time") from None
        if not self.closed:
            self.closed = True
            self.outcome = "completed"
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await self.ws.close(Close.NORMAL)

    # ------------------------------------------------------------------ outbound
    async def _send_loop(self) -> None:
        session = self.session
        assert session is not None
        metrics = self.state.metrics
        while True:
            item = await session.outbox.get()
            kind = item[0]
            if self.closed:
                return
            if kind == "audio":
                _, payload, n_samples, stamps = item
                await self.ws.send_bytes(payload)
                now = time.monotonic()
                session.samples_sent += n_samples
                for t_recv in stamps:
                    seconds = now - t_recv
                    session.added_latency.add(1000.0 * seconds)
                    metrics.added_latency.observe(seconds)
                if session.in_flight <= self._backlog_limit:
                    self._drained.set()
            elif kind == "stats":
                await self.ws.send_text(json.dumps({"type": "stats", **session.stats()}))
            elif kind == "done":
                await self.ws.send_text(json.dumps({"type": "done", **session.stats(histogram=True)}))
                return
            else:
                await self._close_with_error(StreamError("internal_error", item[1]))
                return

    async def _stop_sender(self) -> None:
        sender, self.sender = self.sender, None
        if sender is None or sender is asyncio.current_task():
            return
        if not sender.done():
            sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender

    async def _close_with_error(self, err: StreamError) -> None:
        if self.closed:
            return
        self.closed = True
        self.outcome = err.code
        self._drained.set()
        self.state.metrics.errors.labels("ws", err.code).inc()
        if asyncio.current_task() is not self.sender:
            await self._stop_sender()
        if self.ws.application_state != WebSocketState.CONNECTED:
            return
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self.ws.send_text(json.dumps({"type": "error", "code": err.code, "message": err.message}))
            await self.ws.close(err.close_code, reason=err.code)


async def watchdog(state: AppState) -> None:
    """Enforces the idle timeout and the session length for every connection, a few times
    per shortest limit (at most once a second)."""
    settings = state.settings
    period = max(0.05, min(1.0, settings.idle_timeout_s / 4, settings.max_session_s / 4))
    while True:
        await asyncio.sleep(period)
        now = time.monotonic()
        for handler in list(state.handlers):
            handler.expire(now)


@router.websocket("/v1/stream")
async def stream(websocket: WebSocket) -> None:
    """Live enhancement; see docs/protocol.md."""
    await StreamHandler(websocket, websocket.app.state.hush).run()
