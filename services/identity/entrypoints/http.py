"""The OpenID Connect provider over HTTP, on Keycloak's paths, and the admin REST subset that
python-keycloak's KeycloakAdmin uses. Starlette; every database call runs in a worker thread.

    /realms/{realm}                                       realm info with public_key
    /realms/{realm}/.well-known/openid-configuration      discovery
    /realms/{realm}/protocol/openid-connect/certs         JWKS
    …/auth (GET login page, POST sign-in)                 authorization code + PKCE
    …/token  …/token/introspect  …/revoke  …/userinfo  …/logout
    /admin/realms/{realm}/users|roles|groups|clients…     admin REST (Bearer admin token)
    /healthz
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from lgsp.api.identity.v1 import identity_pb2 as pb
from lgsp.grpc.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ServiceError,
    Unauthenticated,
)
from services.identity.adapters import tables as t
from services.identity.domain import model
from services.identity.domain.model import Invalid, Status
from services.identity.entrypoints.login_page import MESSAGES, error_page, login_page
from services.identity.service_layer.directory import MASTER, REALM, Actor, Directory, fold
from services.identity.service_layer.tokens import (
    ClientContext,
    OAuthError,
    Tokens,
    actor_from_claims,
)

REALMS = (REALM, MASTER)
MAX_FORM_BYTES = 64 * 1024
_NS = uuid.UUID("6c1b4a44-6a1f-4c1e-9d0e-2f0b7c1e9a11")

Handler = Callable[[Request], Awaitable[Response]]


def oauth_error(exc: OAuthError) -> JSONResponse:
    return JSONResponse(
        {"error": exc.error, "error_description": exc.description},
        status_code=exc.status,
        headers={"Cache-Control": "no-store"},
    )


_STATUS = {
    InvalidArgument: 400,
    Unauthenticated: 401,
    PermissionDenied: 403,
    NotFound: 404,
    AlreadyExists: 409,
}


def service_error(exc: ServiceError) -> JSONResponse:
    status = next((code for cls, code in _STATUS.items() if isinstance(exc, cls)), None)
    if status is None:
        status = {"ABORTED": 409, "FAILED_PRECONDITION": 400}.get(exc.code.name, 500)
    body: dict[str, Any] = {"errorMessage": exc.message}
    if isinstance(exc, InvalidArgument):
        body["field"] = exc.violations[0][0]
    return JSONResponse(body, status_code=status)


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
        from urllib.parse import unquote_plus

        return unquote_plus(cid), unquote_plus(secret)
    cid = form.get("client_id", "")
    if not cid:
        raise OAuthError("invalid_client", "Missing parameter: client_id", 401)
    return cid, form.get("client_secret") or None


class OidcApp:
    """Builds the Starlette app over a Directory and Tokens."""

    def __init__(self, directory: Directory, tokens: Tokens) -> None:
        self.directory = directory
        self.tokens = tokens

    def realm(self, request: Request) -> str:
        realm = request.path_params["realm"]
        if realm not in REALMS:
            raise NotFound(f"realm {realm} not found")
        return str(realm)

    # --- public OIDC endpoints ------------------------------------------------------------

    async def realm_info(self, request: Request) -> Response:
        realm = self.realm(request)
        iss = self.tokens.issuer(realm)
        return JSONResponse(
            {
                "realm": realm,
                "public_key": await asyncio.to_thread(self.tokens.keys.public_key_b64),
                "token-service": f"{iss}/protocol/openid-connect",
                "account-service": f"{iss}/account",
                "tokens-not-before": 0,
            }
        )

    async def discovery(self, request: Request) -> Response:
        realm = self.realm(request)
        iss = self.tokens.issuer(realm)
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
        self.realm(request)
        return JSONResponse(await asyncio.to_thread(self.tokens.keys.jwks))

    async def token(self, request: Request) -> Response:
        realm = self.realm(request)
        form = await read_form(request)
        grant = form.get("grant_type", "")
        cid, secret = client_credentials(request, form)
        ctx = client_ctx(request)
        tk = self.tokens
        if grant == "password":
            out = await asyncio.to_thread(
                tk.password_grant,
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
                tk.client_credentials, realm, cid, secret, form.get("scope", ""), ctx
            )
        elif grant == "refresh_token":
            out = await asyncio.to_thread(
                tk.refresh, realm, cid, secret, form.get("refresh_token", ""), ctx
            )
        elif grant == "authorization_code":
            out = await asyncio.to_thread(
                tk.code_grant,
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
        realm = self.realm(request)
        form = await read_form(request)
        cid, secret = client_credentials(request, form)
        out = await asyncio.to_thread(
            self.tokens.introspect, realm, cid, secret, form.get("token", "")
        )
        return JSONResponse(out)

    async def revoke(self, request: Request) -> Response:
        realm = self.realm(request)
        form = await read_form(request)
        cid, secret = client_credentials(request, form)
        await asyncio.to_thread(self.tokens.revoke, realm, cid, secret, form.get("token", ""))
        return Response(status_code=200)

    async def userinfo(self, request: Request) -> Response:
        realm = self.realm(request)
        token = bearer(request)
        return JSONResponse(await asyncio.to_thread(self.tokens.userinfo, realm, token))

    async def logout(self, request: Request) -> Response:
        realm = self.realm(request)
        if request.method == "GET":
            # RP-initiated logout: end the session named by id_token_hint, then go back only
            # to a URI registered for that client.
            hint = request.query_params.get("id_token_hint", "")
            target = request.query_params.get("post_logout_redirect_uri", "")
            if hint:
                try:
                    import joserfc.jwt

                    claims = joserfc.jwt.decode(hint, self.tokens.keys.keyset()).claims
                    if claims.get("sid"):
                        await asyncio.to_thread(self.tokens.end_session, str(claims["sid"]))
                    if target:
                        await asyncio.to_thread(
                            self._check_redirect, realm, str(claims.get("aud")), target
                        )
                        return RedirectResponse(target, status_code=302)
                except (ValueError, Invalid, OAuthError, Exception):
                    return HTMLResponse(error_page("Yêu cầu đăng xuất không hợp lệ."), 400)
            return HTMLResponse(error_page("Bạn đã đăng xuất."), 200)
        form = await read_form(request)
        cid, secret = client_credentials(request, form)
        await asyncio.to_thread(
            self.tokens.logout, realm, cid, secret, form.get("refresh_token", "")
        )
        return Response(status_code=204)

    # --- authorization code + PKCE login page ---------------------------------------------

    def _check_redirect(self, realm: str, client_id: str, redirect_uri: str) -> Any:
        with self.directory.read() as s:
            row = (
                s.execute(
                    sa.select(t.clients).where(
                        t.clients.c.realm == realm, t.clients.c.client_id == client_id
                    )
                )
                .mappings()
                .first()
            )
        if row is None or row["status"] != Status.ACTIVE:
            raise OAuthError("invalid_client", "Client not found")
        model.check_redirect_uri(redirect_uri, list(row["redirect_uris"]))
        return row

    async def auth(self, request: Request) -> Response:
        realm = self.realm(request)
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
        except OAuthError:
            return HTMLResponse(error_page("Ứng dụng yêu cầu đăng nhập không hợp lệ."), 400)
        except Invalid:
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
        form_keys = await asyncio.to_thread(self.tokens.keys.form_keys)
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
                self.tokens.check_password,
                realm,
                username,
                params.get("password", ""),
                params.get("totp", ""),
                client["client_id"],
                ctx,
            )
        except OAuthError as exc:
            msg = MESSAGES.get(exc.description, "Không thể đăng nhập.")
            return self._login_form(
                request,
                action,
                realm,
                hidden,
                form_keys,
                nonce,
                msg,
                username[:64],
                status=429 if exc.status == 429 else 401,
            )
        code, sid = await asyncio.to_thread(
            self.tokens.issue_code,
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
        return back(code=code, session_state=sid, iss=self.tokens.issuer(realm))

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
        response = HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})
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

    # --- admin REST -----------------------------------------------------------------------

    async def admin_actor(self, request: Request) -> tuple[str, Actor]:
        realm = self.realm(request)
        token = bearer(request)
        claims = await asyncio.to_thread(self.tokens.verify, None, token)
        actor = actor_from_claims(claims, client_ctx(request).remote_ip)
        if actor.realm == MASTER and actor.is_platform_admin:
            return realm, actor
        if actor.realm == realm and actor.roles & {"admin", "agency_admin"}:
            return realm, actor
        raise PermissionDenied("an admin token is required")

    def user_rep(self, s: Any, row: Any) -> dict[str, Any]:
        attrs: dict[str, list[str]] = {}
        for key in ("agency_code", "position", "phone", "display_name"):
            if row[key]:
                attrs[key] = [row[key]]
        return {
            "id": row["id"],
            "username": row["username"],
            "enabled": row["status"] != Status.DISABLED,
            "firstName": row["first_name"],
            "lastName": row["last_name"],
            "email": row["email"],
            "emailVerified": bool(row["email"]),
            "createdTimestamp": int(row["created_at"] * 1000),
            "totp": bool(row["totp_secret"]),
            "attributes": attrs,
            "requiredActions": ["UPDATE_PASSWORD"] if row["password_temporary"] else [],
        }

    @staticmethod
    def _window(request: Request) -> tuple[int, int]:
        try:
            first = int(request.query_params.get("first", 0))
            size = int(request.query_params.get("max", 100))
        except ValueError:
            raise InvalidArgument("first", "first and max must be integers") from None
        if first < 0 or size < 0:
            raise InvalidArgument("first", "first and max must not be negative")
        return first, min(size, 1000)

    async def users(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        if request.method == "POST":
            body = await json_body(request)
            return await self._create_user(realm, actor, body)
        q = request.query_params
        first, size = self._window(request)

        def run() -> list[dict[str, Any]]:
            query = sa.select(t.users).where(
                t.users.c.realm == realm, t.users.c.service_client_id.is_(None)
            )
            if q.get("username"):
                name = q["username"].lower()
                exact = q.get("exact", "").lower() == "true"
                query = query.where(
                    t.users.c.username == name
                    if exact
                    else t.users.c.username.like(f"%{_esc(name)}%", escape="\\")
                )
            if q.get("email"):
                query = query.where(t.users.c.email == q["email"].lower())
            if q.get("search"):
                query = query.where(
                    t.users.c.search_text.like(f"%{_esc(fold(q['search']))}%", escape="\\")
                )
            if q.get("enabled"):
                enabled = t.users.c.status != Status.DISABLED
                query = query.where(enabled if q["enabled"] == "true" else ~enabled)
            with self.directory.read() as s:
                rows = (
                    s.execute(query.order_by(t.users.c.username).offset(first).limit(size))
                    .mappings()
                    .all()
                )
                return [self.user_rep(s, r) for r in rows]

        return JSONResponse(await asyncio.to_thread(run))

    async def users_count(self, request: Request) -> Response:
        realm, _ = await self.admin_actor(request)

        def run() -> int:
            with self.directory.read() as s:
                return int(
                    s.execute(
                        sa.select(sa.func.count())
                        .select_from(t.users)
                        .where(t.users.c.realm == realm, t.users.c.service_client_id.is_(None))
                    ).scalar_one()
                )

        return JSONResponse(await asyncio.to_thread(run))

    async def _create_user(self, realm: str, actor: Actor, body: dict[str, Any]) -> Response:
        attrs = body.get("attributes") or {}
        u = pb.User(
            username=_str(body, "username"),
            email=_str(body, "email"),
            agency_code=_attr(attrs, "agency_code"),
            position=_attr(attrs, "position"),
            phone=_attr(attrs, "phone"),
            display_name=_attr(attrs, "display_name"),
        )
        if not u.display_name and not (body.get("firstName") or body.get("lastName")):
            u.display_name = u.username  # Keycloak does not require a name
        password, temporary = "", False
        for cred in body.get("credentials") or []:
            if isinstance(cred, dict) and cred.get("type", "password") == "password":
                password = str(cred.get("value", ""))
                temporary = bool(cred.get("temporary", False))
        msg, _ = await asyncio.to_thread(
            self.directory.create_user,
            actor,
            u,
            password=password,
            temporary=temporary,
            realm=realm,
            first_name=_str(body, "firstName"),
            last_name=_str(body, "lastName"),
            enabled=bool(body.get("enabled", True)),
        )
        location = f"{self.tokens.base_url}/admin/realms/{realm}/users/{msg.id}"
        return Response(status_code=201, headers={"Location": location})

    async def user(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        uid = request.path_params["id"]
        d = self.directory
        if request.method == "GET":

            def get() -> dict[str, Any]:
                with d.read() as s:
                    return self.user_rep(s, d.get_user_row(s, uid, realm))

            return JSONResponse(await asyncio.to_thread(get))
        if request.method == "DELETE":
            await asyncio.to_thread(d.delete_user, actor, uid, realm)
            return Response(status_code=204)
        body = await json_body(request)

        def put() -> None:
            with d.read() as s:
                row = d.get_user_row(s, uid, realm)
            attrs = body.get("attributes") or {}
            u = pb.User(id=uid)
            mask = []
            for key, src in (
                ("email", body.get("email")),
                *(
                    (
                        k,
                        attrs[k][0]
                        if isinstance(attrs.get(k), list) and attrs[k]
                        else attrs.get(k),
                    )
                    for k in ("agency_code", "position", "phone", "display_name")
                ),
            ):
                if src is not None and isinstance(src, str):
                    setattr(u, key, src)
                    mask.append(key)
            extra: dict[str, Any] = {}
            try:
                for key, col in (("firstName", "first_name"), ("lastName", "last_name")):
                    if isinstance(body.get(key), str):
                        extra[col] = model.check_name(body[key], key, 100, required=False)
            except Invalid as exc:
                raise InvalidArgument(exc.field, exc.description) from None
            if mask or extra:
                d.update_user(actor, u, mask, extra=extra)
            if "enabled" in body:
                enabled = bool(body["enabled"])
                if enabled != (row["status"] != Status.DISABLED):
                    d.set_user_status(actor, uid, "", enabled)

        await asyncio.to_thread(put)
        return Response(status_code=204)

    async def reset_password(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        body = await json_body(request)
        value = body.get("value")
        if not isinstance(value, str) or not value:
            raise InvalidArgument("value", "the new password is required")
        await asyncio.to_thread(
            self.directory.reset_password,
            actor,
            request.path_params["id"],
            value,
            bool(body.get("temporary", True)),
            realm,
        )
        return Response(status_code=204)

    def role_rep(
        self, realm: str, name: str, description: str = "", rid: str = ""
    ) -> dict[str, Any]:
        return {
            "id": rid or str(uuid.uuid5(_NS, f"{realm}/{name}")),
            "name": name,
            "description": description,
            "composite": False,
            "clientRole": False,
            "containerId": realm,
        }

    def _all_roles(self, realm: str) -> list[dict[str, Any]]:
        out = [
            self.role_rep(realm, name, model.ROLE_DESCRIPTIONS[name])
            for name in model.ROLE_NAMES.values()
        ]
        with self.directory.read() as s:
            for r in s.execute(
                sa.select(t.realm_roles).where(t.realm_roles.c.realm == realm)
            ).mappings():
                out.append(self.role_rep(realm, r["name"], r["description"], r["id"]))
        return out

    async def roles(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        if request.method == "GET":
            roles = await asyncio.to_thread(self._all_roles, realm)
            search = request.query_params.get("search", "")
            return JSONResponse([r for r in roles if search.lower() in r["name"]])
        body = await json_body(request)
        name = _str(body, "name")

        def create() -> str:
            self.directory.require_platform_admin(actor)
            try:
                model.check_client_id(name, "name")  # same shape as a client id
                desc = model.check_name(_str(body, "description"), "description", 300, False)
            except Invalid as exc:
                raise InvalidArgument(exc.field, exc.description) from None
            if any(r["name"] == name for r in self._all_roles(realm)):
                raise AlreadyExists(f"role {name} already exists")
            with self.directory._uow() as uow:
                rid = str(uuid.uuid4())
                uow.session.execute(
                    sa.insert(t.realm_roles).values(
                        id=rid, realm=realm, name=name, description=desc
                    )
                )
                Directory.audit(uow.session, actor, "role.create", name)
                uow.commit()
            return name

        await asyncio.to_thread(create)
        return Response(
            status_code=201,
            headers={"Location": f"{self.tokens.base_url}/admin/realms/{realm}/roles/{name}"},
        )

    async def role(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        name = request.path_params["name"]
        roles = await asyncio.to_thread(self._all_roles, realm)
        match = [r for r in roles if r["name"] == name]
        if not match:
            raise NotFound(f"role {name} not found")
        if request.method == "DELETE":
            if name in model.ROLE_NUMBERS:
                raise InvalidArgument("name", "built-in roles cannot be deleted")

            def delete() -> None:
                self.directory.require_platform_admin(actor)
                with self.directory._uow() as uow:
                    uow.session.execute(
                        sa.delete(t.realm_roles).where(
                            t.realm_roles.c.realm == realm, t.realm_roles.c.name == name
                        )
                    )
                    uow.session.execute(
                        sa.delete(t.role_grants).where(t.role_grants.c.role == name)
                    )
                    Directory.audit(uow.session, actor, "role.delete", name)
                    uow.commit()

            await asyncio.to_thread(delete)
            return Response(status_code=204)
        return JSONResponse(match[0])

    async def user_roles(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        uid = request.path_params["id"]
        d = self.directory
        if request.method == "GET":

            def get() -> list[dict[str, Any]]:
                with d.read() as s:
                    d.get_user_row(s, uid, realm)
                    names = sorted({g["role"] for g in d.grants_of(s, uid)})
                return [self.role_rep(realm, n, model.ROLE_DESCRIPTIONS.get(n, "")) for n in names]

            return JSONResponse(await asyncio.to_thread(get))
        body = await json_body(request, list)
        names: list[Any] = [r.get("name") for r in body if isinstance(r, dict)]
        if not names or not all(isinstance(n, str) and n for n in names):
            raise InvalidArgument("name", "each role needs a name")

        def change() -> None:
            with d.read() as s:
                row = d.get_user_row(s, uid, realm)
            for n in names:
                if request.method == "POST":
                    d.grant_role(actor, uid, n, row["agency_code"] or "")
                else:
                    d.revoke_role(actor, uid, n, None)

        await asyncio.to_thread(change)
        return Response(status_code=204)

    def group_rep(self, row: Any) -> dict[str, Any]:
        return {
            "id": row["id"],
            "name": row["name"],
            "path": f"/{row['name']}",
            "subGroupCount": 0,
            "subGroups": [],
            "attributes": {"agency_code": [row["agency_code"]]} if row["agency_code"] else {},
        }

    async def groups(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        d = self.directory
        if request.method == "POST":
            body = await json_body(request)
            g = pb.Group(
                name=_str(body, "name"),
                agency_code=_attr(body.get("attributes") or {}, "agency_code"),
            )
            msg = await asyncio.to_thread(d.create_group, actor, g, "", realm)
            return Response(
                status_code=201,
                headers={
                    "Location": f"{self.tokens.base_url}/admin/realms/{realm}/groups/{msg.id}"
                },
            )
        first, size = self._window(request)
        search = request.query_params.get("search", "")

        def run() -> list[dict[str, Any]]:
            query = sa.select(t.groups).where(t.groups.c.realm == realm)
            if search:
                query = query.where(t.groups.c.name.like(f"%{_esc(search)}%", escape="\\"))
            with d.read() as s:
                rows = s.execute(
                    query.order_by(t.groups.c.name).offset(first).limit(size)
                ).mappings()
                return [self.group_rep(r) for r in rows]

        return JSONResponse(await asyncio.to_thread(run))

    async def group(self, request: Request) -> Response:
        _, actor = await self.admin_actor(request)
        gid = request.path_params["id"]
        d = self.directory
        if request.method == "DELETE":
            await asyncio.to_thread(d.delete_group, actor, gid)
            return Response(status_code=204)
        if request.method == "PUT":
            body = await json_body(request)
            await asyncio.to_thread(
                d.update_group, actor, pb.Group(id=gid, name=_str(body, "name")), ["name"]
            )
            return Response(status_code=204)

        def get() -> dict[str, Any]:
            with d.read() as s:
                return self.group_rep(d.get_group_row(s, gid))

        return JSONResponse(await asyncio.to_thread(get))

    async def group_members(self, request: Request) -> Response:
        _ = await self.admin_actor(request)
        gid = request.path_params["id"]
        first, size = self._window(request)
        d = self.directory

        def run() -> list[dict[str, Any]]:
            with d.read() as s:
                d.get_group_row(s, gid)
                rows = s.execute(
                    sa.select(t.users)
                    .join(t.group_members, t.group_members.c.user_id == t.users.c.id)
                    .where(t.group_members.c.group_id == gid)
                    .order_by(t.users.c.username)
                    .offset(first)
                    .limit(size)
                ).mappings()
                return [self.user_rep(s, r) for r in rows]

        return JSONResponse(await asyncio.to_thread(run))

    async def user_groups(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        uid = request.path_params["id"]
        d = self.directory
        if "group_id" in request.path_params:
            gid = request.path_params["group_id"]
            add, remove = ([uid], []) if request.method == "PUT" else ([], [uid])
            await asyncio.to_thread(d.change_members, actor, gid, add, remove)
            return Response(status_code=204)

        def run() -> list[dict[str, Any]]:
            with d.read() as s:
                d.get_user_row(s, uid, realm)
                rows = s.execute(
                    sa.select(t.groups)
                    .join(t.group_members, t.group_members.c.group_id == t.groups.c.id)
                    .where(t.group_members.c.user_id == uid)
                    .order_by(t.groups.c.name)
                ).mappings()
                return [self.group_rep(r) for r in rows]

        return JSONResponse(await asyncio.to_thread(run))

    def client_rep(self, row: Any) -> dict[str, Any]:
        return {
            "id": row["id"],
            "clientId": row["client_id"],
            "name": row["display_name"],
            "enabled": row["status"] == Status.ACTIVE,
            "publicClient": row["secret_hash"] is None,
            "redirectUris": list(row["redirect_uris"]),
            "serviceAccountsEnabled": bool(row["service_accounts"]),
            "directAccessGrantsEnabled": bool(row["direct_grants"]),
            "standardFlowEnabled": bool(row["redirect_uris"]),
            "protocol": "openid-connect",
            "attributes": {"agency_code": row["owner_agency_code"]},
        }

    async def clients(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        d = self.directory
        if request.method == "POST":
            body = await json_body(request)
            attrs = body.get("attributes") or {}
            public = bool(body.get("publicClient", False))
            secret = None if public else (_str(body, "secret") or "")
            redirect = body.get("redirectUris") or []
            if not isinstance(redirect, list) or not all(isinstance(u, str) for u in redirect):
                raise InvalidArgument("redirectUris", "must be a list of URIs")
            c = pb.ClientSystem(
                client_id=_str(body, "clientId"),
                display_name=_str(body, "name") or _str(body, "clientId"),
                owner_agency_code=_attr(attrs, "agency_code"),
            )
            _, _, internal = await asyncio.to_thread(
                lambda: d.create_client(
                    actor,
                    c,
                    realm=realm,
                    secret=secret,
                    redirect_uris=redirect,
                    service_accounts=bool(body.get("serviceAccountsEnabled", False)),
                    direct_grants=bool(body.get("directAccessGrantsEnabled", True)),
                )
            )
            return Response(
                status_code=201,
                headers={
                    "Location": f"{self.tokens.base_url}/admin/realms/{realm}/clients/{internal}"
                },
            )
        cid = request.query_params.get("clientId")

        def run() -> list[dict[str, Any]]:
            query = sa.select(t.clients).where(t.clients.c.realm == realm)
            if cid:
                query = query.where(t.clients.c.client_id == cid)
            with d.read() as s:
                return [
                    self.client_rep(r)
                    for r in s.execute(query.order_by(t.clients.c.client_id)).mappings()
                ]

        return JSONResponse(await asyncio.to_thread(run))

    def _client_by_internal(self, realm: str, internal: str) -> Any:
        with self.directory.read() as s:
            row = (
                s.execute(
                    sa.select(t.clients).where(
                        t.clients.c.id == internal, t.clients.c.realm == realm
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"client {internal} not found")
        return row

    async def client(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        internal = request.path_params["id"]
        if request.method == "DELETE":
            await asyncio.to_thread(self.directory.delete_client, actor, internal, realm)
            return Response(status_code=204)
        row = await asyncio.to_thread(self._client_by_internal, realm, internal)
        return JSONResponse(self.client_rep(row))

    async def client_secret(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        row = await asyncio.to_thread(self._client_by_internal, realm, request.path_params["id"])
        if request.method == "POST":
            secret, _ = await asyncio.to_thread(
                self.directory.rotate_client_secret, actor, row["client_id"], realm
            )
            return JSONResponse({"type": "secret", "value": secret})
        # Only the secret's hash is stored: it is shown once, when created or regenerated.
        return JSONResponse({"type": "secret", "value": None})

    async def service_account_user(self, request: Request) -> Response:
        realm, _ = await self.admin_actor(request)
        row = await asyncio.to_thread(self._client_by_internal, realm, request.path_params["id"])
        if not row["service_user_id"]:
            raise InvalidArgument("client", "service accounts are not enabled for this client")

        def get() -> dict[str, Any]:
            with self.directory.read() as s:
                return self.user_rep(s, self.directory.get_user_row(s, row["service_user_id"]))

        return JSONResponse(await asyncio.to_thread(get))

    async def healthz(self, request: Request) -> Response:
        def ping() -> None:
            with self.directory.read() as s:
                s.execute(sa.text("SELECT 1"))

        await asyncio.to_thread(ping)
        return JSONResponse({"status": "ok"})

    def build(self) -> Starlette:
        oidc = "/realms/{realm}/protocol/openid-connect"
        admin = "/admin/realms/{realm}"
        routes = [
            Route("/healthz", self.healthz),
            Route("/realms/{realm}", self.realm_info),
            Route("/realms/{realm}/.well-known/openid-configuration", self.discovery),
            Route(f"{oidc}/certs", self.certs),
            Route(f"{oidc}/auth", self.auth, methods=["GET", "POST"]),
            Route(f"{oidc}/token", self.token, methods=["POST"]),
            Route(f"{oidc}/token/introspect", self.introspect, methods=["POST"]),
            Route(f"{oidc}/revoke", self.revoke, methods=["POST"]),
            Route(f"{oidc}/userinfo", self.userinfo, methods=["GET", "POST"]),
            Route(f"{oidc}/logout", self.logout, methods=["GET", "POST"]),
            Route(f"{admin}/users", self.users, methods=["GET", "POST"]),
            Route(f"{admin}/users/count", self.users_count),
            Route(f"{admin}/users/{{id}}", self.user, methods=["GET", "PUT", "DELETE"]),
            Route(f"{admin}/users/{{id}}/reset-password", self.reset_password, methods=["PUT"]),
            Route(
                f"{admin}/users/{{id}}/role-mappings/realm",
                self.user_roles,
                methods=["GET", "POST", "DELETE"],
            ),
            Route(f"{admin}/users/{{id}}/groups", self.user_groups),
            Route(
                f"{admin}/users/{{id}}/groups/{{group_id}}",
                self.user_groups,
                methods=["PUT", "DELETE"],
            ),
            Route(f"{admin}/roles", self.roles, methods=["GET", "POST"]),
            Route(f"{admin}/roles/{{name}}", self.role, methods=["GET", "DELETE"]),
            Route(f"{admin}/groups", self.groups, methods=["GET", "POST"]),
            Route(f"{admin}/groups/{{id}}", self.group, methods=["GET", "PUT", "DELETE"]),
            Route(f"{admin}/groups/{{id}}/members", self.group_members),
            Route(f"{admin}/clients", self.clients, methods=["GET", "POST"]),
            Route(f"{admin}/clients/{{id}}", self.client, methods=["GET", "DELETE"]),
            Route(
                f"{admin}/clients/{{id}}/client-secret",
                self.client_secret,
                methods=["GET", "POST"],
            ),
            Route(f"{admin}/clients/{{id}}/service-account-user", self.service_account_user),
        ]
        return Starlette(
            routes=routes,
            exception_handlers={
                OAuthError: lambda r, e: oauth_error(e),
                ServiceError: lambda r, e: service_error(e),
            },
        )


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


def bearer(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer ") or len(auth) < 10:
        raise OAuthError("invalid_token", "Missing bearer token", 401)
    return auth[7:].strip()


async def json_body(request: Request, kind: type = dict) -> Any:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidArgument("body", "too large")
    try:
        import json

        data = json.loads(body or b"null")
    except ValueError:
        raise InvalidArgument("body", "is not JSON") from None
    if not isinstance(data, kind):
        raise InvalidArgument("body", f"expected a JSON {'object' if kind is dict else 'array'}")
    return data


def _str(body: dict[str, Any], key: str) -> str:
    value = body.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument(key, "must be a string")
    return value


def _attr(attrs: Any, key: str) -> str:
    if not isinstance(attrs, dict):
        raise InvalidArgument("attributes", "must be an object")
    value = attrs.get(key)
    if isinstance(value, list):
        value = value[0] if value else ""
    return value if isinstance(value, str) else ""


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
