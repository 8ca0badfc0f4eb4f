"""What every request handler shares: the loaded models, the scheduler, counters (``app.state.hush``).

Its own module so that the app factory and the REST and WebSocket routers all import it,
and none of them imports another.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from hush.models import ModelRegistry, WeightFileError
from hush.models.weights import WeightMetadata
from hush.streaming import Enhancer

from .auth import ApiKeys
from .errors import api_error
from .metrics import Metrics
from .scheduler import Scheduler
from .settings import Settings

log = logging.getLogger("hush.service")


@dataclass
class AppState:
    """Everything the handlers share; lives on ``app.state.hush``."""

    settings: Settings
    metrics: Metrics
    keys: ApiKeys
    registry: ModelRegistry | None = None
    enhancers: dict[str, Enhancer] = field(default_factory=dict)
    metadata: dict[str, WeightMetadata] = field(default_factory=dict)
    scheduler: Scheduler | None = None
    rest_executor: ThreadPoolExecutor | None = None
    ready: bool = False
    connections: int = 0  # open WebSocket connections, started or not
    rest_jobs: int = 0  # REST enhance requests in progress
    tasks: set[asyncio.Task] = field(default_factory=set)  # per-session sender tasks
    handlers: set[Any] = field(default_factory=set)  # live ws.StreamHandler objects

    def enhancer(self, name: str | None) -> tuple[str, Enhancer]:
        """The loaded model called ``name`` (default model when ``None``).

        Raises ``ApiError(unknown_model)``: names are dictionary keys, never paths.
        """
        name = self.settings.default_model if name is None else name
        enhancer = self.enhancers.get(name)
        if enhancer is None:
            known = ", ".join(sorted(self.enhancers)) or "none"
            raise api_error("unknown_model", f"unknown model {name[:80]!r} (available: {known})")
        return name, enhancer


def load_models(state: AppState) -> None:
    """Load every registered model once; the default model must be among them."""
    settings = state.settings
    registry = ModelRegistry(extra_dirs=list(settings.models_dir), include_shipped=settings.include_shipped)
    for path, problem in registry.problems.items():
        log.warning("skipped %s: %s", path, problem)
    for name in registry.names():
        try:
            model, meta = registry.load(name)
        except WeightFileError as err:
            log.error("cannot load model %s: %s", name, err)
            continue
        state.enhancers[name] = Enhancer(model, name, precision=state.settings.precision)
        state.metadata[name] = meta
    if settings.default_model not in state.enhancers:
        known = ", ".join(sorted(state.enhancers)) or "none"
        raise RuntimeError(
            f"default model {settings.default_model!r} is not loaded (available: {known}); "
            "set HUSH_DEFAULT_MODEL or add weights with HUSH_MODELS_DIR"
        )
    state.registry = registry
    log.info("loaded models: %s (default %s)", ", ".join(sorted(state.enhancers)), settings.default_model)
