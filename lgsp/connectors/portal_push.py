"""The national public service portal's pushes to a province: how they are signed and
checked. One place for both ends (the portal mock signs, the dossiers service verifies).

A push is an HTTP POST of a JSON body with two headers:

    X-DVC-Timestamp: 1767225600                      Unix seconds when it was signed
    X-DVC-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

The signature covers the timestamp, so an old push cannot be re-dated; a receiver accepts a
timestamp within `TOLERANCE_S` of its clock. A push replayed inside that window is
absorbed by the receiver's idempotence (the portal's dossier code), not by the signature.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-DVC-Timestamp"
SIGNATURE_HEADER = "X-DVC-Signature"
TOLERANCE_S = 300  # five minutes either way, as webhook senders commonly allow
_PREFIX = "sha256="


class PushRejected(Exception):
    """The push is not authentic (401) or too old or too far in the future (403)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return _PREFIX + mac.hexdigest()


def sign(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The headers of a push of `body` signed now."""
    stamp = int(time.time() if now is None else now)
    return {TIMESTAMP_HEADER: str(stamp), SIGNATURE_HEADER: signature(secret, stamp, body)}


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> int:
    """The push's timestamp if `headers` sign `body` with `secret` within the window;
    PushRejected otherwise. `headers` is looked up case-insensitively by the caller's
    mapping (Starlette's is)."""
    raw_stamp = headers.get(TIMESTAMP_HEADER) or ""
    given = headers.get(SIGNATURE_HEADER) or ""
    if not raw_stamp or not given:
        raise PushRejected(401, "UNSIGNED", f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} required")
    if not (raw_stamp.isascii() and raw_stamp.isdigit() and len(raw_stamp) <= 12):
        raise PushRejected(401, "BAD_SIGNATURE", f"{TIMESTAMP_HEADER} is not Unix seconds")
    stamp = int(raw_stamp)
    if not hmac.compare_digest(signature(secret, stamp, body).encode(), given.strip().encode()):
        raise PushRejected(401, "BAD_SIGNATURE", "the signature does not match the body")
    # Checked after the signature: only an authentic push learns that it is stale.
    if abs((time.time() if now is None else now) - stamp) > tolerance_s:
        raise PushRejected(403, "STALE_PUSH", f"timestamp outside ±{tolerance_s} s (a replay?)")
    return stamp
