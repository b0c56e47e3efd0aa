"""The authorization endpoint (`…/protocol/openid-connect/auth`): the Vietnamese login page
with its anti-forgery token, the SSO session (a signed-in browser gets a code without the
form; prompt, max_age, login_hint), and the UPDATE_PASSWORD required action."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
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
from services.identity.entrypoints.login_page import (
    MESSAGES,
    content_security_policy,
    error_page,
    login_page,
    password_page,
    totp_page,
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
                if _actions(user) == {"CONFIGURE_TOTP"}:  # next: the second factor
                    return self._totp_form(request, action, realm, hidden, form_keys, nonce, user)
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
                if not security.verify_totp(secret, params.get("totp", "")):
                    user = await asyncio.to_thread(self.users.row, uid)
                    return self._totp_form(
                        request,
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
                pending = _actions(user)
                if pending and pending <= {"UPDATE_PASSWORD", "CONFIGURE_TOTP"}:
                    await asyncio.to_thread(self.logins.release, user)
                    if "UPDATE_PASSWORD" in pending:
                        return self._password_form(
                            request, action, realm, hidden, form_keys, nonce, user["id"]
                        )
                    return self._totp_form(request, action, realm, hidden, form_keys, nonce, user)
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

    def _totp_form(
        self,
        request: Request,
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
            TOTP_PENDING_FIELD: pending_token(
                keys[0], nonce, user["id"], realm, hidden, now, purpose
            ),
            TOTP_SECRET_FIELD: secret,
        }
        uri = security.totp_uri(secret, user["username"])
        target = urlsplit(hidden.get("redirect_uri", ""))
        origin = f"{target.scheme}://{target.netloc}" if target.netloc else ""
        return HTMLResponse(
            totp_page(action, fields, secret, uri, error),
            status_code=400 if error else 200,
            headers={
                "Cache-Control": "no-store",
                "Content-Security-Policy": content_security_policy(origin),
            },
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
