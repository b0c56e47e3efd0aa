"""Password hashing, lockout rules, per-address throttling and TOTP: the sign-in rules.

argon2id parameters are OWASP's first recommendation (m = 19 MiB, t = 2, p = 1); a stored
hash with weaker parameters is re-hashed at the next successful sign-in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import argon2
import pyotp

from lgsp.ratelimit import FailureWindow

__all__ = [
    "ARGON2_MEMORY_KIB",
    "ARGON2_PARALLELISM",
    "ARGON2_TIME_COST",
    "AddressThrottle",
    "LockoutPolicy",
    "hash_password",
    "hash_secret",
    "needs_rehash",
    "new_app_password",
    "new_secret",
    "new_totp_secret",
    "normalize_app_password",
    "verify_password",
    "verify_secret",
    "verify_totp",
]

ARGON2_TIME_COST = 2
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_PARALLELISM = 1

_hasher = argon2.PasswordHasher(
    time_cost=ARGON2_TIME_COST,
    memory_cost=ARGON2_MEMORY_KIB,
    parallelism=ARGON2_PARALLELISM,
    type=argon2.Type.ID,
)
# Verified against when the account does not exist, so an unknown username costs the same
# time as a wrong password (no user enumeration by timing).
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


def new_totp_secret() -> str:
    """A base32 TOTP secret for an authenticator app."""
    return pyotp.random_base32()


def is_totp_secret(value: str) -> bool:
    return len(value) == 32 and all(c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" for c in value)


def totp_uri(secret: str, username: str) -> str:
    """The otpauth:// URI an authenticator app takes (typed in, or as a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name="LGSP Ha Tinh")


# Client secrets and refresh tokens are 256-bit random values: a fast hash is enough (no
# dictionary to attack), and a slow one would cap client_credentials throughput.
def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def verify_secret(stored_hash: str | None, secret: str) -> bool:
    return stored_hash is not None and hmac.compare_digest(stored_hash, hash_secret(secret))


# App passwords: 16 random lowercase letters shown in four groups of four, as Google's (26^16,
# 75 bits: beyond guessing, and typed on a phone without switching keyboards). Hashed with
# argon2id like account passwords.
APP_PASSWORD_LETTERS = "abcdefghijklmnopqrstuvwxyz"
APP_PASSWORD_LENGTH = 16


def new_app_password() -> str:
    """A new app password, e.g. "abcd efgh ijkl mnop"."""
    letters = "".join(secrets.choice(APP_PASSWORD_LETTERS) for _ in range(APP_PASSWORD_LENGTH))
    return " ".join(letters[i : i + 4] for i in range(0, APP_PASSWORD_LENGTH, 4))


def normalize_app_password(typed: str) -> str | None:
    """The 16 letters of an app password as typed (with or without its spaces, in either
    case), or None when the text cannot be one. An account password never has this shape
    (the password policy wants three character classes), so the shape decides which of the
    two a mail client's login is checked as."""
    letters = typed.replace(" ", "").lower()
    if len(letters) == APP_PASSWORD_LENGTH and all(c in APP_PASSWORD_LETTERS for c in letters):
        return letters
    return None


def verify_totp(secret: str, code: str) -> bool:
    """A 6-digit RFC 6238 code, accepting one step of clock drift either way."""
    return bool(code) and pyotp.TOTP(secret).verify(code.strip(), valid_window=1)


@dataclass(frozen=True)
class LockoutPolicy:
    """Per-account: after `max_failures` wrong passwords in a row, lock for `lock_seconds`."""

    max_failures: int = 5
    lock_seconds: float = 15 * 60

    def after_failure(self, failures: int, now: float) -> float | None:
        """Lock-until time when this failure (already counted) reaches the limit."""
        return now + self.lock_seconds if failures >= self.max_failures else None


class AddressThrottle(FailureWindow):
    """Per-address: at most `limit` failed sign-ins per `window` seconds from one address.

    Process-local (one identity process per province in the embedded mode); behind several
    replicas each replica throttles on its own, which only loosens the limit by the replica count.
    """

    def __init__(self, limit: int = 20, window: float = 300.0) -> None:
        super().__init__(limit, window)
