"""The OpenID Connect endpoints on Keycloak's paths (the authorization endpoint and its login
page are in authorize.py). They parse the request, call the token use cases (in a worker
thread) and answer; refusals become RFC 6749 error JSON (web.py).

    /realms/{realm}                                       realm info with public_key
    /realms/{realm}/.well-known/openid-configuration      discovery
    /realms/{realm}/protocol/openid-connect/certs         JWKS
    …/auth (GET login page, POST sign-in)                 authorization code + PKCE
    …/token  …/token/introspect  …/revoke  …/userinfo  …/logout
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

import joserfc.jwt
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from services.identity.domain import errors as de
from services.identity.domain import sessions as rules
from services.identity.entrypoints.authorize import SSO_COOKIE, check_redirect, cookie_path
from services.identity.entrypoints.login_page import (
    error_page,
    logout_page,
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
from services.identity.service_layer.sessions import Sessions
from services.identity.service_layer.sso import SingleSignOn


class OidcEndpoints:
    def __init__(
        self,
        keys: KeyStore,
        grants: Grants,
        sessions: Sessions,
        clients: Clients,
        sso: SingleSignOn,
        assertions: ClientAssertions,
    ) -> None:
        self.sso = sso
        self.assertions = assertions
        self.keys = keys
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
                await asyncio.to_thread(check_redirect, self.clients, realm, client_id, target)
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
        response.delete_cookie(SSO_COOKIE, path=cookie_path(realm))
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
