"""The pages of the required actions left after a right password (Keycloak's order):
UPDATE_PASSWORD (choose a new password), CONFIGURE_TOTP (add the secret to an authenticator
app, type a first code), VERIFY_PROFILE (confirm or correct name and email). Each carries the
login form's token and a pending token bound to this browser, request and account (and, for
TOTP, the secret shown)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import HTMLResponse, Response

from services.identity.domain import security
from services.identity.domain.directory import required_actions
from services.identity.entrypoints.form_tokens import (
    FORM_TOKEN_FIELD,
    PENDING_FIELD,
    TOTP_PENDING_FIELD,
    TOTP_SECRET_FIELD,
    form_token,
    pending_token,
)
from services.identity.entrypoints.login_page import (
    content_security_policy,
    password_page,
    profile_page,
    totp_page,
)

ORDER = ("UPDATE_PASSWORD", "CONFIGURE_TOTP", "VERIFY_PROFILE")
PROFILE_PENDING_FIELD = "pending_profile"
PROFILE_PURPOSE = "verify-profile"
# The form's fields, named as Keycloak's user representation names them.
PROFILE_FIELDS = ("lastName", "firstName", "email")


def _html(page: str, hidden: dict[str, str], error: bool) -> Response:
    target = urlsplit(hidden.get("redirect_uri", ""))  # registered, compared exactly
    origin = f"{target.scheme}://{target.netloc}" if target.netloc else ""
    return HTMLResponse(
        page,
        status_code=400 if error else 200,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": content_security_policy(origin),
        },
    )


def next_page(
    action: str, realm: str, hidden: dict[str, str], keys: list[bytes], nonce: str, user: Any
) -> Response | None:
    """The page of the first required action the account still has, or None."""
    pending = set(required_actions(user))
    if "UPDATE_PASSWORD" in pending:
        return password_form(action, realm, hidden, keys, nonce, user["id"])
    if "CONFIGURE_TOTP" in pending:
        return totp_form(action, realm, hidden, keys, nonce, user)
    if "VERIFY_PROFILE" in pending:
        current = {
            "lastName": user["last_name"],
            "firstName": user["first_name"],
            "email": user["email"],
        }
        if not current["lastName"] and not current["firstName"]:
            # Accounts made with a display name only: offered split at the last word (the
            # given name, in Vietnamese order), for the official to correct.
            family, _, given = (user["display_name"] or "").strip().rpartition(" ")
            current |= {"lastName": family, "firstName": given}
        return profile_form(action, realm, hidden, keys, nonce, user["id"], current)
    return None


def password_form(
    action: str,
    realm: str,
    hidden: dict[str, str],
    keys: list[bytes],
    nonce: str,
    user_id: str,
    error: str = "",
) -> Response:
    now = time.time()
    fields = {
        **hidden,
        FORM_TOKEN_FIELD: form_token(keys[0], nonce, realm, hidden, now),
        PENDING_FIELD: pending_token(keys[0], nonce, user_id, realm, hidden, now),
    }
    return _html(password_page(action, fields, error), hidden, bool(error))


def totp_form(
    action: str,
    realm: str,
    hidden: dict[str, str],
    keys: list[bytes],
    nonce: str,
    user: Any,
    error: str = "",
    secret: str = "",
) -> Response:
    secret = secret or security.new_totp_secret()
    now = time.time()
    purpose = f"configure-totp\0{secret}"
    fields = {
        **hidden,
        FORM_TOKEN_FIELD: form_token(keys[0], nonce, realm, hidden, now),
        TOTP_PENDING_FIELD: pending_token(keys[0], nonce, user["id"], realm, hidden, now, purpose),
        TOTP_SECRET_FIELD: secret,
    }
    uri = security.totp_uri(secret, user["username"])
    return _html(totp_page(action, fields, secret, uri, error), hidden, bool(error))


def profile_form(
    action: str,
    realm: str,
    hidden: dict[str, str],
    keys: list[bytes],
    nonce: str,
    user_id: str,
    values: dict[str, str],
    bad_field: str = "",
) -> Response:
    """VERIFY_PROFILE: name and email as stored (or as typed, with the field found wrong)."""
    now = time.time()
    fields = {
        **hidden,
        FORM_TOKEN_FIELD: form_token(keys[0], nonce, realm, hidden, now),
        PROFILE_PENDING_FIELD: pending_token(
            keys[0], nonce, user_id, realm, hidden, now, PROFILE_PURPOSE
        ),
    }
    shown = {k: values.get(k, "")[:254] for k in PROFILE_FIELDS}
    return _html(profile_page(action, fields, shown, bad_field), hidden, bool(bad_field))
