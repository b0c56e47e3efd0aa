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
from services.identity.domain import sessions as rules
from services.identity.domain.model import Status, check_redirect_uri
from services.identity.entrypoints.login_page import (
    MESSAGES,
    content_security_policy,
    error_page,
    login_page,
    logout_page,
    password_page,
)
from services.identity.entrypoints.web import (
    OAuthError,
    bearer,
    client_credentials,
    client_ctx,
    read_form,
    realm_of,
)
from services.identity.service_layer.client_auth import ASSERTION_TYPE, ClientAssertions
from services.identity.service_layer.clients import Clients
from services.identity.service_layer.grants import Grants
from services.identity.service_layer.keys import KeyStore
from services.identity.service_layer.logins import Logins
from services.identity.service_layer.sessions import Sessions
from services.identity.service_layer.sso import SingleSignOn
from services.identity.service_layer.users import Users

LOGIN_COOKIE = "lgsp_login"
SSO_COOKIE = "LGSP_SSO"  # "<SSO session id>.<secret>" (Keycloak's KEYCLOAK_IDENTITY)
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
PENDING_TTL = 600  # the new password must be chosen within this time of the temporary one


def pending_token(
    key: bytes, nonce: str, user_id: str, realm: str, hidden: dict[str, str], now: float
) -> str:
    """Signed: this browser (its login cookie) signed in as `user_id` with a temporary
    password for this request, at `now`."""
    issued = str(int(now))
    mac = hmac.new(
        key,
        f"update-password\0{user_id}\0{_form_mac(key, nonce, issued, realm, hidden)}".encode(),
        hashlib.sha256,
    ).hexdigest()
    return f"{issued}.{user_id}.{mac}"


def pending_user(
    keys: list[bytes], nonce: str, token: str, realm: str, hidden: dict[str, str]
) -> str | None:
    issued, _, rest = token.partition(".")
    user_id, _, mac = rest.partition(".")
    if not issued.isdigit() or len(user_id) != 36 or len(mac) != 64:
        return None
    if not 0 <= time.time() - int(issued) <= PENDING_TTL:
        return None
    for key in keys:
        want = pending_token(key, nonce, user_id, realm, hidden, int(issued))
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


class OidcEndpoints:
    def __init__(
        self,
        keys: KeyStore,
        logins: Logins,
        grants: Grants,
        sessions: Sessions,
        clients: Clients,
        sso: SingleSignOn,
        assertions: ClientAssertions,
        users: Users,
    ) -> None:
        self.users = users
        self.sso = sso
        self.assertions = assertions
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
                "backchannel_logout_supported": True,
                "backchannel_logout_session_supported": True,
                "prompt_values_supported": ["none", "login"],
                "acr_values_supported": [rules.ACR_PASSWORD, rules.ACR_TWO_FACTOR],
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
                    "private_key_jwt",
                ],
                "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256", "PS256"],
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
                    "auth_time",
                    "acr",
                    "amr",
                    "sid",
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
        cid, secret = await self._client_auth(realm, request, form)
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
            raise OAuthError("unsupported_grant_type", f"Unsupported grant_type {grant[:120]!r}")
        return JSONResponse(out, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    async def _client_auth(
        self, realm: str, request: Request, form: dict[str, str]
    ) -> tuple[str, str | None]:
        """client_secret_basic, client_secret_post, or private_key_jwt (an assertion)."""
        kind = form.get("client_assertion_type")
        if kind is None:
            return client_credentials(request, form)
        if kind != ASSERTION_TYPE or not form.get("client_assertion"):
            raise OAuthError("invalid_client", "Unsupported client_assertion_type", 401)
        if len(form["client_assertion"]) > 8192:
            raise OAuthError("invalid_client", "client_assertion too large", 401)
        return await asyncio.to_thread(self.assertions.authenticate, realm, form)

    async def introspect(self, request: Request) -> Response:
        realm = realm_of(request)
        form = await read_form(request)
        cid, secret = await self._client_auth(realm, request, form)
        out = await asyncio.to_thread(
            self.sessions.introspect, realm, cid, secret, form.get("token", "")
        )
        return JSONResponse(out)

    async def revoke(self, request: Request) -> Response:
        realm = realm_of(request)
        form = await read_form(request)
        cid, secret = await self._client_auth(realm, request, form)
        await asyncio.to_thread(self.sessions.revoke, realm, cid, secret, form.get("token", ""))
        return Response(status_code=200)

    async def userinfo(self, request: Request) -> Response:
        realm = realm_of(request)
        token = bearer(request)
        return JSONResponse(await asyncio.to_thread(self.sessions.userinfo, realm, token))

    async def logout(self, request: Request) -> Response:
        """Keycloak's POST with a client's refresh token (→ 204), or RP-initiated logout
        (OpenID Connect RP-Initiated Logout 1.0; GET or a form POST): either ends the SSO
        session with every client session started from it."""
        realm = realm_of(request)
        params = dict(request.query_params)
        if request.method == "POST":
            form = await read_form(request)
            if "refresh_token" in form:
                cid, secret = await self._client_auth(realm, request, form)
                sid = await asyncio.to_thread(
                    self.sessions.logout_session, realm, cid, secret, form["refresh_token"]
                )
                await asyncio.to_thread(self.sso.end_by_session, realm, sid)
                return Response(status_code=204)
            params.update(form)
        hint = params.get("id_token_hint", "")
        target = params.get("post_logout_redirect_uri", "")
        client_id = params.get("client_id", "")
        cookie = request.cookies.get(SSO_COOKIE, "")
        if hint:
            try:
                claims = await asyncio.to_thread(self._hint_claims, realm, hint)
            except (de.Refused, ValueError):
                return HTMLResponse(error_page("Yêu cầu đăng xuất không hợp lệ."), 400)
            client_id = client_id or str(claims.get("aud", ""))
            if claims.get("sid"):
                await asyncio.to_thread(self.sso.end_by_session, realm, str(claims["sid"]))
        elif cookie:
            sso = await asyncio.to_thread(self.sso.find, realm, cookie)
            if sso is not None and not (request.method == "POST" and params.get("confirm")):
                # No hint: ask first. The POST carries the cookie only from this origin
                # (SameSite=Lax), so another site cannot confirm it for the official.
                return HTMLResponse(logout_page(str(request.url.replace(query=""))))
            if sso is not None:
                await asyncio.to_thread(self.sso.end, realm, sso["id"])
        if target:
            try:
                await asyncio.to_thread(self._check_redirect, realm, client_id, target)
            except de.DomainError:  # an unknown client or URI: never redirect there
                response: Response = HTMLResponse(
                    error_page("Địa chỉ chuyển hướng không hợp lệ."), 400
                )
            else:
                state = params.get("state", "")
                sep = "&" if "?" in target else "?"
                query = f"{sep}{urlencode({'state': state})}" if state else ""
                response = RedirectResponse(target + query, status_code=302)
        else:
            response = HTMLResponse(error_page("Bạn đã đăng xuất."), 200)
        response.delete_cookie(SSO_COOKIE, path=self._cookie_path(realm))
        return response

    def _hint_claims(self, realm: str, hint: str) -> dict[str, Any]:
        """An ID token this provider issued in this realm (expired ones too: OIDC RP-Initiated
        Logout §2 lets a client send the last one it has)."""
        try:
            claims = dict(joserfc.jwt.decode(hint, self.keys.keyset()).claims)
        except Exception:  # joserfc raises many kinds for a malformed or foreign token
            raise de.BadRequest("Invalid id_token_hint") from None
        if claims.get("iss") != self.sessions.issuer(realm) or claims.get("typ") != "ID":
            raise de.BadRequest("Invalid id_token_hint")
        return claims

    @staticmethod
    def _cookie_path(realm: str) -> str:
        return f"/realms/{realm}/"

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
        try:
            prompt = rules.parse_prompt(params.get("prompt", ""))
            max_age = rules.parse_max_age(params.get("max_age", ""))
        except de.BadRequest as exc:
            return back(error="invalid_request", error_description=exc.message)
        cookie = request.cookies.get(SSO_COOKIE, "")
        sso = await asyncio.to_thread(self.sso.find, realm, cookie) if cookie else None
        if request.method == "GET" and sso is not None:
            auth = rules.Authentication.of(sso)
            assert auth is not None
            if not rules.must_authenticate(prompt, max_age, auth, time.time()):
                # Signed in already in this browser: a code at once, no form.
                try:
                    code, sid = await asyncio.to_thread(
                        self._reuse, realm, client, sso, hidden, method, client_ctx(request)
                    )
                except de.Refused:
                    sso = None  # the account was disabled meanwhile: sign in again
                else:
                    return back(code=code, session_state=sid, iss=self.sessions.issuer(realm))
        if request.method == "GET" and "none" in prompt:
            # OIDC Core §3.1.2.6: no page may be shown.
            return back(error="login_required", error_description="Sign-in required")
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
            hint = params.get("login_hint", "")[:64]
            return self._login_form(request, action, realm, hidden, form_keys, nonce, "", hint)
        username = params.get("username", "")
        ctx = client_ctx(request)
        try:
            if params.get(PENDING_FIELD):
                # UPDATE_PASSWORD: the temporary password was right moments ago (the signed
                # pending token says so, for this browser and request); the new one replaces it.
                uid = pending_user(form_keys, nonce, params[PENDING_FIELD], realm, hidden)
                if uid is None:
                    return self._login_form(
                        request,
                        action,
                        realm,
                        hidden,
                        form_keys,
                        nonce,
                        MESSAGES["form"],
                        status=403,
                    )
                new = params.get("new_password", "")
                problem = "password mismatch" if new != params.get("confirm_password") else ""
                if not problem:
                    try:
                        user = await asyncio.to_thread(
                            self.users.change_temporary_password, uid, new
                        )
                    except de.Invalid:
                        problem = "password policy"
                    except de.DomainError:  # no longer temporary: sign in as usual
                        return self._login_form(request, action, realm, hidden, form_keys, nonce)
                if problem:
                    return self._password_form(
                        request, action, realm, hidden, form_keys, nonce, uid, MESSAGES[problem]
                    )
            else:
                user = await asyncio.to_thread(
                    self.logins.check_password,
                    realm,
                    username,
                    params.get("password", ""),
                    params.get("totp", ""),
                    client["client_id"],
                    ctx,
                )
                if user["password_temporary"] and not user["required_actions"]:
                    await asyncio.to_thread(self.logins.release, user)
                    return self._password_form(
                        request, action, realm, hidden, form_keys, nonce, user["id"]
                    )
            await asyncio.to_thread(self.grants.require_set_up, user)
            auth = rules.Authentication.password(time.time(), bool(user["totp_secret"]))
            new_cookie = ""
            if sso is not None and sso["user_id"] == user["id"]:
                row = self.sso.again(sso, auth)  # signed in again in the same SSO session
            else:
                if sso is not None:  # another official signs in on this browser
                    await asyncio.to_thread(self.sso.end, realm, sso["id"], "replaced")
                row, new_cookie = self.sso.new(realm, user["id"], auth, time.time())
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
                row,
                new_sso=bool(new_cookie),
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
        response = back(code=code, session_state=sid, iss=self.sessions.issuer(realm))
        if new_cookie:
            response.set_cookie(
                SSO_COOKIE,
                new_cookie,
                path=self._cookie_path(realm),
                secure=request.url.scheme == "https",
                httponly=True,
                # Lax: sent when another application's page sends the browser here (a
                # top-level GET), never with another site's POST.
                samesite="lax",
            )
        return response

    def _reuse(
        self,
        realm: str,
        client: Any,
        sso: Any,
        hidden: dict[str, str],
        method: str,
        ctx: Any,
    ) -> tuple[str, str]:
        with self.sessions.storage.read() as r:
            user = r.accounts.one(sso["user_id"])
        return self.grants.issue_code(
            realm,
            client,
            user,
            hidden["redirect_uri"],
            hidden.get("code_challenge", ""),
            method,
            hidden.get("scope", "openid"),
            hidden.get("nonce", ""),
            ctx,
            sso,
            signed_in=False,
        )

    def _password_form(
        self,
        request: Request,
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
        target = urlsplit(hidden.get("redirect_uri", ""))
        origin = f"{target.scheme}://{target.netloc}" if target.netloc else ""
        return HTMLResponse(
            password_page(action, fields, error),
            status_code=400 if error else 200,
            headers={
                "Cache-Control": "no-store",
                "Content-Security-Policy": content_security_policy(origin),
            },
        )

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
