"""Opaque page cursors: the position after the last hit, signed so it cannot be forged.

A cursor is base64url(JSON) + "." + base64url(HMAC-SHA256[:16]). The JSON holds the sort
position and a fingerprint of the query and caller, so a cursor cannot be replayed against
another query or by another agency (the rights filter is applied anyway).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from .errors import SearchInputError

MAX_CURSOR_CHARS = 4096


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("cursor key must be at least 16 bytes")
        self._key = key

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:16]

    def encode(self, state: dict[str, Any], fingerprint: str) -> str:
        payload = json.dumps({**state, "f": fingerprint}, separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def decode(self, cursor: str, fingerprint: str) -> dict[str, Any]:
        bad = SearchInputError("cursor", "invalid or tampered page cursor; start from page one")
        if len(cursor) > MAX_CURSOR_CHARS or cursor.count(".") != 1:
            raise bad
        body, mac = cursor.split(".")
        try:
            payload, tag = _unb64(body), _unb64(mac)
        except (binascii.Error, ValueError):
            raise bad from None
        if not hmac.compare_digest(tag, self._mac(payload)):
            raise bad
        state = json.loads(payload)
        if not isinstance(state, dict) or state.get("f") != fingerprint:
            raise SearchInputError(
                "cursor", "the cursor belongs to another query; start from page one"
            )
        return state
