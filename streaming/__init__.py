"""Per-stream state, the frame loop and audio I/O. Depends on ``hush.models`` only."""

from .engine import Enhancer, min_gain_from_db
from .stream import Stream, StreamFinishedError, step_streams

__all__ = ["Enhancer", "Stream", "StreamFinishedError", "min_gain_from_db", "step_streams"]
