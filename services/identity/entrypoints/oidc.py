"""The OpenID Connect endpoints on Keycloak's paths, and the Vietnamese login page of the
authorization-code flow with its anti-forgery token. They parse the request, call the token
use cases (in a worker thread) and answer; refusals become RFC 6749 error JSON (web.py).

    /realms/{realm}                                       realm info with public_key
    /realms/{realm}/.well-known/openid-configuration      discovery
    /realms/{realm}/protocol/openid-connect/certs         JWKS
    …/auth (GET login page, POST sign-in)                 authorization code + PKCE
    …/token  …/token/introspect  …/revoke  …/userinfo  …/logout
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import joserfc.jwt
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from services.identity.domain import errors as de
from services.identity.domain.model import Status, check_redirect_uri
from services.identity.entrypoints.login_page import (
    MESSAGES,
    content_security_policy,
    error_page,
    login_page,
)
from services.identity.entrypoints.web import (
    OAuthError,
    bearer,
    client_credentials,
    client_ctx,
    read_form,
    realm_of,
)
from services.identity.service_layer.clients import Clients
from services.identity.service_layer.grants import Grants
from services.identity.service_layer.keys import KeyStore
from services.identity.service_layer.logins import Logins
from services.identity.service_layer.sessions import Sessions

LOGIN_COOKIE = "lgsp_login"
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


class OidcEndpoints:
    def __init__(
        self, keys: KeyStore, logins: Logins, grants: Grants, sessions: Sessions, clients: Clients
    ) -> None:
        self.keys = keys
        self.logins = logins
        self.grants = grants
        self.sessions = sessions
        self.clients = clients

    async def realm_info(self, request: Request) -> Response:
        realm = realm_of(request)
        iss = self.sessions.issuer(realm)
        return JSONResponse(
            {
                "realm": realm,
                "public_key": await asyncio.to_thread(self.keys.public_key_b64),
                "token-service": f"{iss}/protocol/openid-connect",
                "account-service": f"{iss}/account",
                "tokens-not-before": 0,
            }
        )

    async def discovery(self, request: Request) -> Response:
        realm = realm_of(request)
        iss = self.sessions.issuer(realm)
        oidc = f"{iss}/protocol/openid-connect"
        return JSONResponse(
            {
                "issuer": iss,
                "authorization_endpoint": f"{oidc}/auth",
                "token_endpoint": f"{oidc}/token",
                "introspection_endpoint": f"{oidc}/token/introspect",
                "userinfo_endpoint": f"{oidc}/userinfo",
                "end_session_endpoint": f"{oidc}/logout",
                "revocation_endpoint": f"{oidc}/revoke",
                "jwks_uri": f"{oidc}/certs",
                "grant_types_supported": [
                    "authorization_code",
                    "password",
                    "client_credentials",
                    "refresh_token",
                ],
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": ["openid", "profile", "email", "roles"],
                "claims_supported": [
                    "sub",
                    "iss",
                    "name",
                    "preferred_username",
                    "email",
                    "agency_code",
                    "agency_roles",
                    "realm_access",
                ],
            }
        )

    async def certs(self, request: Request) -> Response:
        realm_of(request)
        return JSONResponse(await asyncio.to_thread(self.keys.jwks))

    async def token(self, request: Request) -> Response:
        realm = realm_of(request)
        form = await read_form(request)
        grant = form.get("grant_type", "")
        cid, secret = client_credentials(request, form)
        ctx = client_ctx(request)
        g = self.grants
        if grant == "password":
            out = await asyncio.to_thread(
                g.password_grant,
                realm,
                cid,
                secret,
                form.get("username", ""),
                form.get("password", ""),
                form.get("totp", ""),
                form.get("scope", ""),
                ctx,
            )
        elif grant == "client_credentials":
            out = await asyncio.to_thread(
                g.client_credentials, realm, cid, secret, form.get("scope", ""), ctx
            )
        elif grant == "refresh_token":
            out = await asyncio.to_thread(
                g.refresh, realm, cid, secret, form.get("refresh_token", ""), ctx
            )
        elif grant == "authorization_code":
            out = await asyncio.to_thread(
                g.code_grant,
                realm,
                cid,
                secret,
                form.get("code", ""),
                form.get("redirect_uri", ""),
                form.get("code_verifier", ""),
            )
        else:
            raise OAuthError("unsupported_grant_type", f"Unsupported grant_type {grant[:40]!r}")
        return JSONResponse(out, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    async def introspect(self, request: Request) -> Response:
        realm = realm_of(request)
        form = await read_form(request)
        cid, secret = client_credentials(request, form)
        out = await asyncio.to_thread(
            self.sessions.introspect, realm, cid, secret, form.get("token", "")
        )
        return JSONResponse(out)

    async def revoke(self, request: Request) -> Response:
        realm = realm_of(request)
        form = await read_form(request)
        cid, secret = client_credentials(request, form)
        await asyncio.to_thread(self.sessions.revoke, realm, cid, secret, form.get("token", ""))
        return Response(status_code=200)

    async def userinfo(self, request: Request) -> Response:
        realm = realm_of(request)
        token = bearer(request)
        return JSONResponse(await asyncio.to_thread(self.sessions.userinfo, realm, token))

    async def logout(self, request: Request) -> Response:
        realm = realm_of(request)
        if request.method == "GET":
            # RP-initiated logout: end the session named by id_token_hint, then go back only
            # to a URI registered for that client.
            hint = request.query_params.get("id_token_hint", "")
            target = request.query_params.get("post_logout_redirect_uri", "")
            if hint:
                try:
                    claims = joserfc.jwt.decode(hint, self.keys.keyset()).claims
                    if claims.get("sid"):
                        await asyncio.to_thread(self.sessions.end_session, str(claims["sid"]))
                    if target:
                        await asyncio.to_thread(
                            self._check_redirect, realm, str(claims.get("aud")), target
                        )
                        return RedirectResponse(target, status_code=302)
                except Exception:  # a bad hint, an unknown client or URI: no redirect
                    return HTMLResponse(error_page("Yêu cầu đăng xuất không hợp lệ."), 400)
            return HTMLResponse(error_page("Bạn đã đăng xuất."), 200)
        form = await read_form(request)
        cid, secret = client_credentials(request, form)
        await asyncio.to_thread(
            self.sessions.logout, realm, cid, secret, form.get("refresh_token", "")
        )
        return Response(status_code=204)

    # --- authorization code + PKCE login page ---------------------------------------------

    def _check_redirect(self, realm: str, client_id: str, redirect_uri: str) -> Any:
        row = self.clients.row(realm, client_id)
        if row is None or row["status"] != Status.ACTIVE:
            raise de.UnknownClient("Client not found")
        check_redirect_uri(redirect_uri, list(row["redirect_uris"]))
        return row

    async def auth(self, request: Request) -> Response:
        realm = realm_of(request)
        params = dict(request.query_params)
        if request.method == "POST":
            form = await read_form(request)
            params = form
        keys = (
            "client_id",
            "redirect_uri",
            "response_type",
            "scope",
            "state",
            "nonce",
            "code_challenge",
            "code_challenge_method",
        )
        hidden = {k: params.get(k, "") for k in keys if params.get(k)}
        try:
            client = await asyncio.to_thread(
                self._check_redirect,
                realm,
                params.get("client_id", ""),
                hidden.get("redirect_uri", ""),
            )
        except de.UnknownClient:
            return HTMLResponse(error_page("Ứng dụng yêu cầu đăng nhập không hợp lệ."), 400)
        except de.Invalid:
            # Never redirect to an unregistered URI (open redirect).
            return HTMLResponse(error_page("Địa chỉ chuyển hướng không hợp lệ."), 400)
        redirect_uri = hidden["redirect_uri"]

        def back(**q: str) -> Response:
            if hidden.get("state"):
                q["state"] = hidden["state"]
            sep = "&" if "?" in redirect_uri else "?"
            return RedirectResponse(f"{redirect_uri}{sep}{urlencode(q)}", status_code=302)

        if hidden.get("response_type") != "code":
            return back(error="unsupported_response_type")
        method = hidden.get("code_challenge_method", "")
        if hidden.get("code_challenge"):
            if method != "S256":
                return back(error="invalid_request", error_description="Only S256 PKCE")
        elif client["secret_hash"] is None:
            return back(error="invalid_request", error_description="Missing code_challenge")
        action = str(request.url.replace(query=""))
        form_keys = await asyncio.to_thread(self.keys.form_keys)
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        if request.method == "POST" and not form_token_ok(
            form_keys, nonce, params.get(FORM_TOKEN_FIELD, ""), realm, hidden
        ):
            # A POST that did not come from a page this provider served (cross-site forgery,
            # or a form left open too long): the credentials are not even looked at.
            return self._login_form(
                request, action, realm, hidden, form_keys, nonce, MESSAGES["form"], status=403
            )
        if request.method == "GET":
            return self._login_form(request, action, realm, hidden, form_keys, nonce)
        username = params.get("username", "")
        ctx = client_ctx(request)
        try:
            user = await asyncio.to_thread(
                self.logins.check_password,
                realm,
                username,
                params.get("password", ""),
                params.get("totp", ""),
                client["client_id"],
                ctx,
            )
            code, sid = await asyncio.to_thread(
                self.grants.issue_code,
                realm,
                client,
                user,
                redirect_uri,
                hidden.get("code_challenge", ""),
                method,
                hidden.get("scope", "openid"),
                hidden.get("nonce", ""),
                ctx,
            )
        except de.Refused as exc:
            msg = MESSAGES.get(exc.message, "Không thể đăng nhập.")
            return self._login_form(
                request,
                action,
                realm,
                hidden,
                form_keys,
                nonce,
                msg,
                username[:64],
                status=429 if isinstance(exc, de.Throttled) else 401,
            )
        return back(code=code, session_state=sid, iss=self.sessions.issuer(realm))

    @staticmethod
    def _login_form(
        request: Request,
        action: str,
        realm: str,
        hidden: dict[str, str],
        keys: list[bytes],
        nonce: str,
        error: str = "",
        username: str = "",
        status: int = 200,
    ) -> Response:
        """The login page with its anti-forgery token: a random value in a cookie the page's
        own origin alone sends back (SameSite=Strict, HttpOnly), and in the form an HMAC of it
        bound to this authorization request (signed double-submit)."""
        nonce = nonce if 16 <= len(nonce) <= 64 else secrets.token_urlsafe(24)
        token = form_token(keys[0], nonce, realm, hidden, time.time())
        page = login_page(action, {**hidden, FORM_TOKEN_FIELD: token}, error, username)
        target = urlsplit(hidden.get("redirect_uri", ""))  # registered, compared exactly
        origin = f"{target.scheme}://{target.netloc}" if target.netloc else ""
        response = HTMLResponse(
            page,
            status_code=status,
            headers={
                "Cache-Control": "no-store",
                "Content-Security-Policy": content_security_policy(origin),
            },
        )
        response.set_cookie(
            LOGIN_COOKIE,
            nonce,
            max_age=FORM_TOKEN_TTL,
            path=request.url.path,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response
