"""``hush serve``: the app under uvicorn."""

from __future__ import annotations

import logging

from .settings import Settings


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run until interrupted. One uvicorn process owns the sockets; its scheduler spreads
    the streams over stream worker processes (one per core less one by default,
    ``HUSH_WORKERS``),
    each batching its own into one model call per tick. Beyond one machine, scale out with
    replicas (docs/deploy.md)."""
    import uvicorn

    from .app import create_app

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level,
        # Larger than our own limit, so that oversized messages reach the app and get a
        # JSON error with close code 1009; only far larger ones are cut by the protocol.
        ws_max_size=2 * settings.max_message_bytes + 1024,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        timeout_graceful_shutdown=10,
        proxy_headers=True,
        server_header=False,
    )
