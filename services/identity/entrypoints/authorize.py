"""The authorization endpoint (`…/protocol/openid-connect/auth`): the Vietnamese login page
with its anti-forgery token, the SSO session (a signed-in browser gets a code without the
form; prompt, max_age, login_hint), and the UPDATE_PASSWORD required action."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from services.identity.domain import errors as de
from services.identity.domain import security
from services.identity.domain import sessions as rules
from services.identity.domain.directory import required_actions
from services.identity.domain.model import Status, check_redirect_uri
from services.identity.entrypoints import required_action_pages as pages
from services.identity.entrypoints.form_tokens import (
    FORM_TOKEN_FIELD,
    FORM_TOKEN_TTL,
    PENDING_FIELD,
    TOTP_PENDING_FIELD,
    TOTP_SECRET_FIELD,
    form_token,
    form_token_ok,
    pending_user,
)
from services.identity.entrypoints.login_page import (
    MESSAGES,
    content_security_policy,
    error_page,
    login_page,
)
from services.identity.entrypoints.web import client_ctx, read_form, realm_of
from services.identity.service_layer.clients import Clients
from services.identity.service_layer.grants import Grants
from services.identity.service_layer.keys import KeyStore
from services.identity.service_layer.logins import Logins
from services.identity.service_layer.sessions import Sessions
from services.identity.service_layer.sso import SingleSignOn
from services.identity.service_layer.users import Users

LOGIN_COOKIE = "lgsp_login"
SSO_COOKIE = "LGSP_SSO"  # "<SSO session id>.<secret>" (Keycloak's KEYCLOAK_IDENTITY)


def _actions(user: Any) -> set[str]:
    return set(required_actions(user))


def cookie_path(realm: str) -> str:
    return f"/realms/{realm}/"


def check_redirect(clients: Clients, realm: str, client_id: str, redirect_uri: str) -> Any:
    """The active client, if `redirect_uri` is one it registered (compared exactly)."""
    row = clients.row(realm, client_id)
    if row is None or row["status"] != Status.ACTIVE:
        raise de.UnknownClient("Client not found")
    check_redirect_uri(redirect_uri, list(row["redirect_uris"]))
    return row


class AuthorizationEndpoint:
    def __init__(
        self,
        keys: KeyStore,
        logins: Logins,
        grants: Grants,
        sessions: Sessions,
        clients: Clients,
        sso: SingleSignOn,
        users: Users,
    ) -> None:
        self.keys = keys
        self.logins = logins
        self.grants = grants
        self.sessions = sessions
        self.clients = clients
        self.sso = sso
        self.users = users

    def _check_redirect(self, realm: str, client_id: str, redirect_uri: str) -> Any:
        return check_redirect(self.clients, realm, client_id, redirect_uri)

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

        def refused() -> Response:
            """The sign-in page again, 403: a form or pending token this provider did not
            serve to this browser for this request."""
            return self._login_form(
                request, action, realm, hidden, form_keys, nonce, MESSAGES["form"], status=403
            )

        if request.method == "POST" and not form_token_ok(
            form_keys, nonce, params.get(FORM_TOKEN_FIELD, ""), realm, hidden
        ):
            # A POST that did not come from a page this provider served (cross-site forgery,
            # or a form left open too long): the credentials are not even looked at.
            return refused()
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
                    return refused()
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
                    return pages.password_form(
                        action, realm, hidden, form_keys, nonce, uid, MESSAGES[problem]
                    )
            elif params.get(TOTP_PENDING_FIELD):
                # CONFIGURE_TOTP: the password was right moments ago; the official proves the
                # authenticator app holds the secret shown (bound to the pending token).
                secret = params.get(TOTP_SECRET_FIELD, "")
                uid = pending_user(
                    form_keys,
                    nonce,
                    params[TOTP_PENDING_FIELD],
                    realm,
                    hidden,
                    f"configure-totp\0{secret}",
                )
                if uid is None or not security.is_totp_secret(secret):
                    return refused()
                if not security.verify_totp(secret, params.get("totp", "")):
                    user = await asyncio.to_thread(self.users.row, uid)
                    return pages.totp_form(
                        action,
                        realm,
                        hidden,
                        form_keys,
                        nonce,
                        user,
                        MESSAGES["Invalid one-time code (totp)"],
                        secret,
                    )
                try:
                    user = await asyncio.to_thread(self.users.configure_totp, uid, secret)
                except de.DomainError:  # done meanwhile: sign in as usual
                    return self._login_form(request, action, realm, hidden, form_keys, nonce)
            elif params.get(pages.PROFILE_PENDING_FIELD):
                # VERIFY_PROFILE: the password was right moments ago; the official confirms
                # (or corrects) name and email.
                uid = pending_user(
                    form_keys,
                    nonce,
                    params[pages.PROFILE_PENDING_FIELD],
                    realm,
                    hidden,
                    pages.PROFILE_PURPOSE,
                )
                if uid is None:
                    return refused()
                profile = {k: params.get(k, "") for k in pages.PROFILE_FIELDS}
                try:
                    user = await asyncio.to_thread(
                        self.users.verify_profile,
                        uid,
                        profile["lastName"],
                        profile["firstName"],
                        profile["email"],
                    )
                except de.Invalid as bad:
                    return pages.profile_form(
                        action, realm, hidden, form_keys, nonce, uid, profile, bad.field
                    )
                except de.DomainError:  # done meanwhile: sign in as usual
                    return self._login_form(request, action, realm, hidden, form_keys, nonce)
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
                if _actions(user) & set(pages.ORDER):
                    await asyncio.to_thread(self.logins.release, user)
            # The required actions left, one page each (UPDATE_PASSWORD, CONFIGURE_TOTP,
            # VERIFY_PROFILE); the sign-in goes on once none is.
            page = pages.next_page(action, realm, hidden, form_keys, nonce, user)
            if page is not None:
                return page
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
                path=cookie_path(realm),
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
