"""The signed tokens of the sign-in forms: the login form's anti-forgery token (bound to the
browser's login cookie and the authorization request) and a required action's pending token
(this browser signed in as this account moments ago, and an action is what is left)."""

from __future__ import annotations

import hashlib
import hmac
import time

FORM_TOKEN_FIELD = "form_token"
FORM_TOKEN_TTL = 1800  # a login page left open longer than this must be reloaded
_BOUND = ("client_id", "redirect_uri", "response_type", "scope", "state", "nonce")


def _form_mac(key: bytes, nonce: str, issued: str, realm: str, hidden: dict[str, str]) -> str:
    bound = "\0".join([nonce, issued, realm, *(hidden.get(k, "") for k in _BOUND)])
    bound += "\0" + hidden.get("code_challenge", "")
    return hmac.new(key, bound.encode(), hashlib.sha256).hexdigest()


def form_token(key: bytes, nonce: str, realm: str, hidden: dict[str, str], now: float) -> str:
    issued = str(int(now))
    return f"{issued}.{_form_mac(key, nonce, issued, realm, hidden)}"


PENDING_FIELD = "pending"
TOTP_PENDING_FIELD = "pending_totp"
TOTP_SECRET_FIELD = "totp_secret"
PENDING_TTL = 600  # the new password must be chosen within this time of the temporary one


def pending_token(
    key: bytes,
    nonce: str,
    user_id: str,
    realm: str,
    hidden: dict[str, str],
    now: float,
    purpose: str = "update-password",
) -> str:
    """Signed: this browser (its login cookie) signed in as `user_id` for this request at
    `now`, and a required action (`purpose`, with what it shows, e.g. the TOTP secret) is
    what is left."""
    issued = str(int(now))
    mac = hmac.new(
        key,
        f"{purpose}\0{user_id}\0{_form_mac(key, nonce, issued, realm, hidden)}".encode(),
        hashlib.sha256,
    ).hexdigest()
    return f"{issued}.{user_id}.{mac}"


def pending_user(
    keys: list[bytes],
    nonce: str,
    token: str,
    realm: str,
    hidden: dict[str, str],
    purpose: str = "update-password",
) -> str | None:
    issued, _, rest = token.partition(".")
    user_id, _, mac = rest.partition(".")
    if not issued.isdigit() or len(user_id) != 36 or len(mac) != 64:
        return None
    if not 0 <= time.time() - int(issued) <= PENDING_TTL:
        return None
    for key in keys:
        want = pending_token(key, nonce, user_id, realm, hidden, int(issued), purpose)
        if hmac.compare_digest(want.rsplit(".", 1)[1], mac):
            return user_id
    return None


def form_token_ok(
    keys: list[bytes], nonce: str, token: str, realm: str, hidden: dict[str, str]
) -> bool:
    """The token was made by this provider, for this cookie and authorization request, and
    within FORM_TOKEN_TTL."""
    issued, _, mac = token.partition(".")
    if not nonce or not issued.isdigit() or len(mac) != 64:
        return False
    age = time.time() - int(issued)
    if not -60 <= age <= FORM_TOKEN_TTL:
        return False
    return any(hmac.compare_digest(_form_mac(k, nonce, issued, realm, hidden), mac) for k in keys)
