"""Helpers for the service tests: settings over tiny weights, a running app, WebSocket sessions."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from hush.service import Settings, create_app
from hush.service.state import AppState


def make_settings(weights_dir: Path, **overrides: Any) -> Settings:
    """Settings over the tiny test weights; ignores the environment's .env file."""
    values: dict[str, Any] = {
        "models_dir": [weights_dir],
        "include_shipped": False,
        "default_model": "tiny-gru",
        "worker": "thread",
        "static_dir": weights_dir / "no-static-here",
        "log_level": "warning",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@contextmanager
def running_app(settings: Settings) -> Iterator[tuple[TestClient, AppState]]:
    """The app with its lifespan run (models loaded, scheduler started)."""
    app = create_app(settings)
    with TestClient(app) as client:
        yield client, app.state.hush


def start_message(rate: int = 16000, encoding: str = "pcm_f32le", **extra: Any) -> str:
    return json.dumps({"type": "start", "sample_rate": rate, "encoding": encoding, "channels": 1, **extra})


def to_bytes(samples: np.ndarray, encoding: str) -> bytes:
    if encoding == "pcm_s16le":
        return np.clip(np.rint(samples * 32768.0), -32768, 32767).astype("<i2").tobytes()
    return samples.astype("<f4").tobytes()


def from_bytes(payload: bytes, encoding: str) -> np.ndarray:
    if encoding == "pcm_s16le":
        return np.frombuffer(payload, "<i2").astype(np.float32) / 32768.0
    return np.frombuffer(payload, "<f4").astype(np.float32)


def send_messages(ws: Any, messages: list[bytes | str]) -> None:
    """Send each message as it is: bytes as a binary frame, str as a text frame."""
    for message in messages:
        if isinstance(message, bytes):
            ws.send_bytes(message)
        else:
            ws.send_text(message)


def read_until_close(ws: Any) -> tuple[bytes, list[dict], int]:
    """Everything the server sends until it closes: (audio bytes, JSON messages, close code)."""
    audio = bytearray()
    messages: list[dict] = []
    while True:
        message = ws.receive()
        if message["type"] == "websocket.close":
            return bytes(audio), messages, int(message["code"])
        if message.get("bytes") is not None:
            audio += message["bytes"]
        elif message.get("text") is not None:
            messages.append(json.loads(message["text"]))


def stream_through(
    client: TestClient,
    audio: np.ndarray,
    chunk_sizes: list[int],
    rate: int = 16000,
    encoding: str = "pcm_f32le",
    path: str = "/v1/stream",
    **start: Any,
) -> tuple[np.ndarray, list[dict], int]:
    """One whole session: start, audio in chunks of the given sizes (cycled), end.

    Returns (output samples, JSON messages after ready, close code).
    """
    with client.websocket_connect(path) as ws:
        ws.send_text(start_message(rate, encoding, **start))
        ready = ws.receive_json()
        assert ready["type"] == "ready", ready
        position, index = 0, 0
        while position < audio.size:
            size = chunk_sizes[index % len(chunk_sizes)]
            ws.send_bytes(to_bytes(audio[position : position + size], encoding))
            position += size
            index += 1
        ws.send_text(json.dumps({"type": "end"}))
        payload, messages, code = read_until_close(ws)
    return from_bytes(payload, encoding), messages, code


def wait_idle(state: AppState, timeout: float = 10.0) -> None:
    """Wait until no connection, session, sender task or stream state is left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        engine = getattr(state.scheduler.worker, "engine", None)
        if (
            state.connections == 0
            and not state.scheduler.sessions
            and not state.tasks
            and (engine is None or not engine.entries)
        ):
            return
        time.sleep(0.01)
    engine = getattr(state.scheduler.worker, "engine", None)
    raise AssertionError(
        f"resources left: connections={state.connections} sessions={len(state.scheduler.sessions)} "
        f"tasks={len(state.tasks)} streams={len(engine.entries) if engine else '-'}"
    )
