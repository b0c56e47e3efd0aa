"""What the OIDC endpoints and the admin REST API share at the HTTP edge: reading forms,
client credentials, bearer tokens and JSON bodies, and turning domain refusals into HTTP
answers — RFC 6749 error JSON `{"error", "error_description"}` for sign-ins and tokens, the
admin REST's `{"errorMessage", "field"}` for the directory."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import unquote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse

from services.identity.domain import errors as de
from services.identity.domain.access import MASTER, REALM
from services.identity.service_layer.logins import ClientContext

REALMS = (REALM, MASTER)
MAX_FORM_BYTES = 64 * 1024


class OAuthError(Exception):
    """An RFC 6749 error answer the edge itself gives (malformed requests)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


# The OAuth error code and HTTP status of each refusal of the token service.
_OAUTH: list[tuple[type[de.Refused], str, int]] = [
    (de.BadRequest, "invalid_request", 400),
    (de.UnknownClient, "invalid_client", 401),
    (de.ClientNotAuthenticated, "unauthorized_client", 401),
    (de.FlowNotAllowed, "unauthorized_client", 400),
    (de.BadCredentials, "invalid_grant", 401),
    (de.Throttled, "invalid_grant", 429),
    (de.InactiveToken, "invalid_token", 401),
    (de.GrantRefused, "invalid_grant", 400),
]


def oauth_error_of(exc: de.Refused) -> OAuthError:
    error, status = next(
        ((e, s) for cls, e, s in _OAUTH if isinstance(exc, cls)), ("invalid_request", 400)
    )
    return OAuthError(error, exc.message, status)


def oauth_error(exc: OAuthError | de.Refused) -> JSONResponse:
    if isinstance(exc, de.Refused):
        exc = oauth_error_of(exc)
    return JSONResponse(
        {"error": exc.error, "error_description": exc.description},
        status_code=exc.status,
        headers={"Cache-Control": "no-store"},
    )


_STATUS: list[tuple[type[de.DomainError], int]] = [
    (de.Invalid, 400),
    (de.PermissionDenied, 403),
    (de.NotFound, 404),
    (de.AlreadyExists, 409),
    (de.Stale, 409),
    (de.FailedPrecondition, 400),
]


def directory_error(exc: de.DomainError) -> JSONResponse:
    """A directory refusal as the admin REST API answers it."""
    if isinstance(exc, de.Refused):
        return oauth_error(exc)
    status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 500)
    body: dict[str, Any] = {"errorMessage": exc.message}
    if isinstance(exc, de.Invalid):
        body["field"] = exc.field
    return JSONResponse(body, status_code=status)


def realm_of(request: Request) -> str:
    realm = request.path_params["realm"]
    if realm not in REALMS:
        raise de.NotFound(f"realm {realm} not found")
    return str(realm)


def client_ctx(request: Request) -> ClientContext:
    return ClientContext(
        remote_ip=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", ""),
    )


async def read_form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise OAuthError("invalid_request", "Request too large", 413)
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("application/x-www-form-urlencoded"):
        raise OAuthError("invalid_request", "Expected application/x-www-form-urlencoded")
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str | None]:
    """client_secret_basic (Authorization: Basic) or client_secret_post."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            raw = base64.b64decode(auth[6:], validate=True).decode()
            cid, _, secret = raw.partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_client", "Malformed Basic credentials", 401) from None
        return unquote_plus(cid), unquote_plus(secret)
    cid = form.get("client_id", "")
    if not cid:
        raise OAuthError("invalid_client", "Missing parameter: client_id", 401)
    return cid, form.get("client_secret") or None


def bearer(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer ") or len(auth) < 10:
        raise OAuthError("invalid_token", "Missing bearer token", 401)
    return auth[7:].strip()


async def json_body(request: Request, kind: type = dict) -> Any:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise de.Invalid("body", "too large")
    try:
        data = json.loads(body or b"null")
    except ValueError:
        raise de.Invalid("body", "is not JSON") from None
    if not isinstance(data, kind):
        raise de.Invalid("body", f"expected a JSON {'object' if kind is dict else 'array'}")
    return data


def text(body: dict[str, Any], key: str) -> str:
    value = body.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise de.Invalid(key, "must be a string")
    return value


def attribute(attrs: Any, key: str) -> str:
    if not isinstance(attrs, dict):
        raise de.Invalid("attributes", "must be an object")
    value = attrs.get(key)
    if isinstance(value, list):
        value = value[0] if value else ""
    return value if isinstance(value, str) else ""
