"""Stable error codes for REST (JSON body + HTTP status) and WebSocket (JSON + close code).

Clients branch on ``code``; ``message`` is for people and may change.
"""

from __future__ import annotations

from enum import IntEnum

from pydantic import BaseModel


class ErrorBody(BaseModel):
    """The JSON body of every REST error."""

    code: str
    message: str
    status: int


class ApiError(Exception):
    """Raised by REST handlers; rendered as ``ErrorBody`` with its HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# REST: HTTP status of each code.
HTTP_STATUS = {
    "unreadable_audio": 400,
    "malformed_request": 400,
    "unauthorized": 401,
    "not_found": 404,
    "method_not_allowed": 405,
    "body_too_large": 413,
    "audio_too_long": 413,
    "unsupported_format": 415,
    "invalid_parameter": 422,
    "unknown_model": 422,
    "internal_error": 500,
    "not_ready": 503,
    "overloaded": 503,
}


def api_error(code: str, message: str) -> ApiError:
    return ApiError(HTTP_STATUS[code], code, message)


class Close(IntEnum):
    """WebSocket close codes (RFC 6455 section 7.4.1)."""

    NORMAL = 1000
    GOING_AWAY = 1001  # the server is shutting down
    UNSUPPORTED = 1003  # unsupported format: encoding, channels, sample rate
    INVALID_DATA = 1007  # malformed message, wrong order, bad parameter
    POLICY = 1008  # authentication; also idle timeout and session length
    TOO_BIG = 1009  # message larger than the limit
    INTERNAL = 1011  # a server bug; the session is lost, the server lives on
    TRY_AGAIN = 1013  # overloaded: too many sessions


# WebSocket: close code of each error code.
WS_CLOSE = {
    "unsupported_format": Close.UNSUPPORTED,
    "malformed_message": Close.INVALID_DATA,
    "invalid_parameter": Close.INVALID_DATA,
    "unknown_model": Close.INVALID_DATA,
    "unauthorized": Close.POLICY,
    "idle_timeout": Close.POLICY,
    "session_too_long": Close.POLICY,
    "message_too_large": Close.TOO_BIG,
    "internal_error": Close.INTERNAL,
    "overloaded": Close.TRY_AGAIN,
    "shutting_down": Close.GOING_AWAY,
}


class StreamError(Exception):
    """Ends a WebSocket session: the server sends ``{"type": "error", ...}`` and closes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = int(WS_CLOSE[code])
