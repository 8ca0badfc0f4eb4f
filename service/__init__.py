"""The network service: REST and WebSocket API over the streaming engine (``hush serve``)."""

from .app import create_app
from .settings import Settings

__all__ = ["Settings", "create_app"]
