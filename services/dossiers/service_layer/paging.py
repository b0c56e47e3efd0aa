"""Opaque page tokens for keyset paging: the last key of the page and a fingerprint of the
request's filters, with a digest so a changed token is refused rather than misread (the digest
is not a secret: a forged token can only start a listing elsewhere, never show more)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from services.dossiers.domain.errors import InvalidField

FIELD = "page_token"
DEFAULT_SIZE, MAX_SIZE = 50, 500


def fingerprint(*filters: object) -> str:
    return hashlib.sha256(json.dumps(filters, default=str).encode()).hexdigest()[:16]


def _digest(payload: bytes) -> str:
    return hashlib.sha256(b"lgsp.dossiers.page:" + payload).hexdigest()[:16]


def encode_token(after: str, filters: str) -> str:
    payload = json.dumps([after, filters]).encode()
    raw = payload + b"|" + _digest(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, filters: str) -> str:
    """The key the page starts after ("" for no token); InvalidField(page_token) when the token
    was not made here or was made for other filters."""
    if not token:
        return ""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload, _, digest = raw.rpartition(b"|")
        after, made_for = json.loads(payload) if digest.decode() == _digest(payload) else ("", "")
    except (binascii.Error, ValueError, TypeError):
        raise InvalidField(FIELD, "is not a token returned by this service") from None
    if not isinstance(after, str) or not after or made_for != filters:
        raise InvalidField(FIELD, "is not a token returned for these filters")
    return after


def page_size(size: int) -> int:
    if size < 0:
        raise InvalidField("page_size", "must not be negative")
    return min(size or DEFAULT_SIZE, MAX_SIZE)
