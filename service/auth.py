"""Optional API keys, compared in constant time.

REST: ``X-API-Key: KEY`` or ``Authorization: Bearer KEY``. WebSocket: the same headers, or
``?api_key=KEY`` in the URL (browsers cannot set headers on a WebSocket).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from pydantic import SecretStr

API_KEY_HEADER = "x-api-key"
API_KEY_QUERY = "api_key"


class ApiKeys:
    def __init__(self, keys: list[SecretStr]) -> None:
        self._keys = [key.get_secret_value().encode() for key in keys if key.get_secret_value()]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def check(self, candidate: str | None) -> bool:
        """True when keys are off, or ``candidate`` equals one of them.

        Every key is compared (no early exit), each with ``hmac.compare_digest``, so the
        time taken says nothing about which key, or how much of one, matched.
        """
        if not self._keys:
            return True
        if not candidate:
            return False
        given = candidate.encode("utf-8", "surrogateescape")
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(given, key)
        return matched

    @staticmethod
    def from_headers(headers: Mapping[str, str]) -> str | None:
        key = headers.get(API_KEY_HEADER)
        if key:
            return key
        authorization = headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
