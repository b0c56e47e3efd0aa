"""Operators sign in to the console through identity: OpenID Connect authorization code with
PKCE (RFC 6749 §4.1, RFC 7636 S256), as the public client `console.oidc_client_id`.

- /login shows the sign-in page; /auth/start sends the browser to identity's login page with
  a fresh `state` and PKCE challenge, bound to this browser by a short-lived cookie (so a code
  obtained in another browser cannot be planted here: login CSRF, RFC 9700 §4.7);
- /auth/callback exchanges the code (with the verifier) over the back channel and verifies the
  access token with the platform's JWT checks (lgsp.authn.jwt: identity's JWKS, issuer,
  audience "lgsp", lifetime) and that it was issued to this client (`azp`). Only the `operator`
  and `admin` roles get a session; anyone else gets 403;
- the session lives on the server (memory: a restarted console asks operators to sign in
  again); the browser holds its random id in a signed HttpOnly SameSite=Lax cookie, and every
  POST carries the session's CSRF token (form field `csrf_token` or header `x-csrf-token`),
  checked by `SessionMiddleware` before any handler runs;
- POST /logout ends the session here and at identity (its refresh token is revoked, RFC 7009).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lgsp.authn.jwt import JwtAuthenticator, issuer_from_settings
from lgsp.config import Settings
from lgsp.grpc.errors import Unauthenticated
from lgsp.otlp_token import installation_token
from lgsp.tls import https_verify

log = logging.getLogger("console.auth")

SESSION_COOKIE = "lgsp_console_session"
LOGIN_COOKIE = "lgsp_console_login"
ROLES = frozenset({"operator", "admin"})
LOGIN_TTL_S = 600.0  # an unfinished sign-in is forgotten after this
MAX_FORM_BYTES = 64 * 1024
# Reachable without a session: liveness, the OTLP receiver (own token) and the sign-in flow.
# /metrics is scraped by Prometheus, which has no session: like every process's metrics port
# it is left to the network (docs/operations.md).
PUBLIC_PATHS = frozenset(
    {"/healthz", "/metrics", "/v1/traces", "/login", "/auth/start", "/auth/callback"}
)
PUBLIC_PREFIXES = ("/static/",)


@dataclass
class Operator:
    subject: str
    username: str
    name: str
    roles: frozenset[str]


@dataclass
class Session:
    operator: Operator
    csrf_token: str
    expires: float
    refresh_token: str = ""


@dataclass
class _PendingLogin:
    verifier: str
    browser: str  # the value of LOGIN_COOKIE the flow was started with
    next_path: str
    expires: float


@dataclass
class Sessions:
    """Server-side sessions and sign-ins under way; cookies carry HMAC-signed random ids."""

    key: bytes
    ttl_s: float
    clock: Any = time.time
    _sessions: dict[str, Session] = field(default_factory=dict)
    _pending: dict[str, _PendingLogin] = field(default_factory=dict)

    def sign(self, value: str) -> str:
        mac = hmac.new(self.key, value.encode(), hashlib.sha256).hexdigest()
        return f"{value}.{mac}"

    def unsign(self, signed: str | None) -> str | None:
        if not signed or "." not in signed:
            return None
        value, _, mac = signed.rpartition(".")
        good = hmac.new(self.key, value.encode(), hashlib.sha256).hexdigest()
        return value if hmac.compare_digest(good, mac) else None

    def create(self, operator: Operator, refresh_token: str) -> str:
        sid = secrets.token_urlsafe(32)
        self._sessions[sid] = Session(
            operator, secrets.token_urlsafe(32), self.clock() + self.ttl_s, refresh_token
        )
        return sid

    def get(self, cookie: str | None) -> Session | None:
        sid = self.unsign(cookie)
        session = self._sessions.get(sid) if sid else None
        if session is None:
            return None
        if session.expires <= self.clock():
            self._sessions.pop(sid or "", None)
            return None
        return session

    def end(self, cookie: str | None) -> Session | None:
        sid = self.unsign(cookie)
        return self._sessions.pop(sid, None) if sid else None

    def begin_login(self, next_path: str) -> tuple[str, str, str]:
        """(state, browser nonce, PKCE challenge) of a new sign-in."""
        self._forget_stale()
        state, browser = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)  # 64 characters, RFC 7636 §4.1
        self._pending[state] = _PendingLogin(
            verifier, browser, next_path, self.clock() + LOGIN_TTL_S
        )
        return state, browser, pkce_challenge(verifier)

    def finish_login(self, state: str, browser: str | None) -> _PendingLogin | None:
        pending = self._pending.pop(state, None)
        if pending is None or pending.expires <= self.clock():
            return None
        if browser is None or not hmac.compare_digest(pending.browser, browser):
            return None
        return pending

    def _forget_stale(self) -> None:
        now = self.clock()
        for state in [s for s, p in self._pending.items() if p.expires <= now]:
            del self._pending[state]
        for sid in [s for s, v in self._sessions.items() if v.expires <= now]:
            del self._sessions[sid]


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def session_key(data_dir: str | Path) -> bytes:
    """The cookie-signing key, per installation (<data_dir>/console-session.key, 0600)."""
    return bytes.fromhex(installation_token(data_dir, name="console-session.key"))


def safe_next(value: str | None) -> str:
    """Only a path on this console (never `//host` or a URL): no open redirect after sign-in."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


class OidcClient:
    """The console's side of the authorization-code flow against identity (or Keycloak)."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        self.issuer = issuer_from_settings(settings)
        self.client_id = settings.console.oidc_client_id
        self.redirect_uri = settings.console_url + "auth/callback"
        self.http = http or httpx.AsyncClient(timeout=10.0, verify=https_verify(settings))
        self.verifier = JwtAuthenticator(self.issuer, audience="lgsp", http_client=self.http)
        base = f"{self.issuer}/protocol/openid-connect"
        self.auth_url, self.token_url, self.logout_url = (
            f"{base}/auth",
            f"{base}/token",
            f"{base}/logout",
        )

    def authorization_url(self, state: str, challenge: str) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid profile roles",
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return f"{self.auth_url}?{urlencode(query)}"

    async def exchange(self, code: str, verifier: str) -> tuple[Operator, str]:
        """(operator, refresh token) for an authorization code; Unauthenticated if refused."""
        try:
            resp = await self.http.post(
                self.token_url,
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": self.redirect_uri,
                    "client_id": self.client_id,
                    "code_verifier": verifier,
                },
            )
        except httpx.HTTPError as exc:
            raise Unauthenticated(f"identity unreachable: {type(exc).__name__}") from None
        if resp.status_code != 200:
            raise Unauthenticated(f"code refused by identity (HTTP {resp.status_code})")
        body = resp.json()
        principal = await self.verifier.verify(str(body.get("access_token", "")))
        if principal.client_id != self.client_id:
            raise Unauthenticated("token was issued to another client")
        roles = set(principal.roles)
        for held in principal.grants.values():
            roles |= held
        claims = principal.claims or {}
        operator = Operator(
            subject=principal.subject,
            username=principal.username or principal.subject,
            name=str(claims.get("name") or principal.username or principal.subject),
            roles=frozenset(roles),
        )
        return operator, str(body.get("refresh_token", ""))

    async def logout(self, refresh_token: str) -> None:
        """End the session at identity too (best effort: ours is already gone)."""
        if not refresh_token:
            return
        try:
            await self.http.post(
                self.logout_url,
                data={"client_id": self.client_id, "refresh_token": refresh_token},
            )
        except httpx.HTTPError as exc:
            log.warning("could not end the identity session: %s", exc)

    async def aclose(self) -> None:
        await self.verifier.aclose()
        await self.http.aclose()


class SessionMiddleware:
    """No page or API without a session (except PUBLIC_PATHS); no POST without its CSRF token.

    A pure ASGI middleware: a form body is read (bounded) to find the token and then handed to
    the app unchanged, and the OTLP receiver's stream is never touched."""

    def __init__(self, app: ASGIApp, sessions: Sessions, secure: bool = False) -> None:
        self.app = app
        self.sessions = sessions
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_page_headers(send)
        path: str = scope["path"]
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        session = self.sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None:
            await _unauthenticated(request)(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            body, presented = await _csrf_token_of(request, receive)
            if body is None:
                await PlainTextResponse("form too large", status_code=413)(scope, receive, send)
                return
            if not presented or not hmac.compare_digest(presented, session.csrf_token):
                resp = PlainTextResponse("missing or wrong CSRF token", status_code=403)
                await resp(scope, receive, send)
                return
            receive = _replay(body)
        scope.setdefault("state", {})
        scope["state"]["user"] = session.operator
        scope["state"]["csrf_token"] = session.csrf_token
        scope["state"]["session"] = session
        await self.app(scope, receive, send)


# Pages: no framing, no scripts at all, forms only to this console, no trace URL (which may
# carry a document number) leaked in a Referer.
PAGE_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self'; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


def _with_page_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            if any(k == b"content-type" and v.startswith(b"text/html") for k, v in headers):
                message = {**message, "headers": headers + PAGE_HEADERS}
        await send(message)

    return wrapped


def _unauthenticated(request: Request) -> Response:
    wants_html = "text/html" in request.headers.get("accept", "")
    if request.method == "GET" and wants_html:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
    return JSONResponse({"error": "sign in first"}, status_code=401)


async def _csrf_token_of(request: Request, receive: Receive) -> tuple[bytes | None, str]:
    """(the whole body, or None if too large; the CSRF token in header or form)."""
    chunks, size = [], 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None, ""
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    header = request.headers.get("x-csrf-token", "")
    if header:
        return body, header
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        form = parse_qs(body.decode("utf-8", "replace"))
        return body, (form.get("csrf_token") or [""])[0]
    return body, ""


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
