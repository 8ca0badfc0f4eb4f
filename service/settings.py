"""Service settings: environment variables with the ``HUSH_`` prefix, or a ``.env`` file.

Lists are written the shell way, not as JSON: ``HUSH_API_KEYS=key1,key2``,
``HUSH_CORS_ORIGINS=https://a.example,https://b.example`` and
``HUSH_MODELS_DIR=/srv/weights:/more/weights`` (``os.pathsep``-separated, the same variable
the model registry reads).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from hush.models import DEFAULT_MODEL
from hush.models.quantize import DEFAULT_PRECISION

STATIC_DIR = Path(__file__).resolve().parent / "static"


def _split(value: object, sep: str) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(sep) if item.strip()]
    return value


class Settings(BaseSettings):
    """Everything an operator can set. Defaults are safe for a single public replica."""

    model_config = SettingsConfigDict(env_prefix="HUSH_", env_file=".env", extra="ignore")

    # ---- models
    models_dir: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, description="Extra folders of weight files, scanned after the shipped ones."
    )
    include_shipped: bool = Field(True, description="Also serve the weights shipped inside the package.")
    default_model: str = Field(DEFAULT_MODEL, description="Model used when a request names none.")

    # ---- limits
    max_body_bytes: int = Field(50 * 2**20, gt=0, description="Largest REST request body, bytes.")
    max_duration_s: float = Field(600.0, gt=0, description="Longest audio accepted by REST, seconds.")
    max_message_bytes: int = Field(
        1 * 2**20, ge=1024, description="Largest WebSocket message (audio or JSON), bytes."
    )
    idle_timeout_s: float = Field(30.0, gt=0, description="A stream with no message for this long is closed.")
    max_session_s: float = Field(3600.0, gt=0, description="Longest WebSocket session, seconds.")
    max_sessions: int = Field(256, ge=1, description="Concurrent WebSocket sessions before 1013.")
    max_backlog_s: float = Field(
        5.0,
        gt=0,
        description="Audio a stream may have in flight (received, not yet sent back) before the "
        "server stops reading from it: back-pressure for clients that send faster than real time.",
    )
    rest_workers: int = Field(1, ge=1, description="Threads that run REST enhancement jobs.")
    max_rest_jobs: int = Field(
        16, ge=1, description="REST enhance requests in progress (reading, queued or running) before 503."
    )
    torch_threads: int = Field(1, ge=1, description="torch intra-op threads for the model step.")
    tick_interval_ms: float = Field(
        6.0,
        ge=0,
        le=50,
        description="Least time between the starts of two batched steps: longer gives bigger "
        "batches (less CPU per stream) and up to that much more latency.",
    )
    workers: int = Field(
        0,
        ge=0,
        le=256,
        description="Stream worker processes (process mode), each batching its own streams; "
        "0 = one per CPU core less one, left to the event-loop process (at least one). Thread "
        "mode always has one.",
    )
    precision: Literal["int8", "float32"] = Field(
        DEFAULT_PRECISION,
        description="The models' weights, for streams and REST alike: int8 (default: each weight "
        "matrix rounded to 8 bits per output channel, float32 arithmetic; one stream's step 2.2x "
        "faster, validation PESQ and STOI within 0.001 of float32, bench/int8_quality.py) or "
        "float32 (the weight files' own numbers).",
    )
    worker: Literal["process", "thread"] = Field(
        "process",
        description="Where streams are stepped: a child process (default: its own GIL, its own "
        "core) or a thread of the server process.",
    )

    @property
    def worker_count(self) -> int:
        """Stream worker processes to start: ``workers``, or for 0 one per core less the one
        the event loop needs. Measured on a 2-core machine (docs/bench/README.md): one
        worker held p99 <= 20 ms up to 55 streams, two workers (one per core) only up to 15,
        as they halve every batch and compete with the event loop for the cores."""
        return self.workers or max(1, (os.cpu_count() or 1) - 1)

    # ---- security
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Accepted API keys; empty means no authentication."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed by CORS; empty means CORS is off."
    )

    # ---- misc
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    static_dir: Path = Field(STATIC_DIR, description="Folder of the browser demo (served at / and /static).")

    @field_validator("models_dir", mode="before")
    @classmethod
    def _split_dirs(cls, value: object) -> object:
        return _split(value, os.pathsep)

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        return _split(value, ",")

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value
