"""Checking and ending what the grants issued: access-token verification (signature, issuer,
expiry, revocation, session, account), introspection (RFC 7662), userinfo, revocation
(RFC 7009) and logout."""

from __future__ import annotations

import time
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError

from services.identity.adapters.unit_of_work import Storage
from services.identity.domain import security
from services.identity.domain import sessions as rules
from services.identity.domain.errors import (
    ClientNotAuthenticated,
    GrantRefused,
    InactiveToken,
)
from services.identity.domain.model import Status
from services.identity.service_layer import ended
from services.identity.service_layer.cache import DirectoryCache
from services.identity.service_layer.keys import KeyStore


class Sessions:
    def __init__(
        self, storage: Storage, keys: KeyStore, cache: DirectoryCache, base_url: str
    ) -> None:
        self.storage = storage
        self.keys = keys
        self.cache = cache
        self.base_url = base_url

    def issuer(self, realm: str) -> str:
        return rules.issuer(self.base_url, realm)

    def verify(self, realm: str | None, token: str) -> dict[str, Any]:
        """Claims of a valid, unrevoked access token of this provider, else InactiveToken."""
        try:
            decoded = jwt.decode(token, self.keys.keyset(), algorithms=["RS256"])
        except (JoseError, ValueError):
            raise InactiveToken("Token verification failed") from None
        claims = dict(decoded.claims)
        now = time.time()
        iss = claims.get("iss", "")
        if realm is not None and iss != self.issuer(realm):
            raise InactiveToken("Token issued for another realm")
        if not iss.startswith(f"{self.base_url}/realms/"):
            raise InactiveToken("Unknown issuer")
        if (
            claims.get("typ") != "Bearer"
            or not isinstance(claims.get("exp"), int)
            or claims["exp"] <= now
        ):
            raise InactiveToken("Token is not active")
        with self.storage.read() as r:
            if r.sessions.is_revoked(claims.get("jti")):
                raise InactiveToken("Token revoked")
            if claims.get("sid"):
                sess = r.sessions.state(claims["sid"])
                if sess is None or not rules.session_active(sess.revoked_at, sess.expires_at, now):
                    raise InactiveToken("Session not active")
            status = r.accounts.status(str(claims.get("sub")))
            if status is None or status == Status.DISABLED:
                raise InactiveToken("Account disabled")
        return claims

    def introspect(
        self, realm: str, client_id: str, secret: str | None, token: str
    ) -> dict[str, Any]:
        with self.storage.read() as r:
            client = self.cache.client(r, realm, client_id, secret)
            if client["secret_hash"] is None:
                raise ClientNotAuthenticated("Public clients may not introspect")
        try:
            claims = self.verify(realm, token)
        except InactiveToken:
            # Perhaps a refresh token.
            with self.storage.read() as r:
                rt = r.sessions.refresh_for_introspection(security.hash_secret(token or ""))
            now = time.time()
            if rt and rt["used_at"] is None and rt["revoked_at"] is None and rt["expires_at"] > now:
                return {
                    "active": True,
                    "token_type": "Refresh",
                    "typ": "Refresh",
                    "client_id": rt["client_id"],
                    "sub": rt["user_id"],
                    "exp": int(rt["expires_at"]),
                    "sid": rt["session_id"],
                }
            return {"active": False}
        return {
            **claims,
            "active": True,
            "client_id": claims.get("azp"),
            "username": claims.get("preferred_username"),
            "token_type": "Bearer",
        }

    def of_user(self, user_id: str) -> list[Any]:
        """An account's open client sessions (admin REST users/{id}/sessions)."""
        with self.storage.read() as r:
            return r.sessions.of_user(user_id, time.time())

    def of_client(self, realm: str, client_id: str) -> list[Any]:
        with self.storage.read() as r:
            return r.sessions.of_client(realm, client_id, time.time())

    def userinfo(self, realm: str, token: str) -> dict[str, Any]:
        return rules.userinfo(self.verify(realm, token))

    def revoke(self, realm: str, client_id: str, secret: str | None, token: str) -> None:
        """RFC 7009: revoke a refresh token or an access token: either ends its session (an
        access token without one, a client's, is refused by its jti); unknown tokens are not
        an error."""
        with self.storage.token_change() as uow:
            r = uow.repos
            self.cache.client(r, realm, client_id, secret)
            rt = r.sessions.refresh_with_session(security.hash_secret(token))
            now = time.time()
            if rt is not None:
                if rt["client_id"] != client_id:
                    return  # RFC 7009 §2.1: only the client it was issued to may revoke it
                ended.sessions_ended(
                    uow, r.sessions.revoke(rt["sid"], "revoked", now), ended.REVOKED, now
                )
            else:
                try:
                    claims = self.verify(realm, token)
                except InactiveToken:
                    return
                if claims.get("azp") != client_id:
                    return
                r.sessions.revoke_access(claims["jti"], claims["exp"], now)
                if claims.get("sid"):
                    gone = r.sessions.revoke(str(claims["sid"]), "revoked", now)
                    ended.sessions_ended(uow, gone, ended.REVOKED, now)
            uow.commit()
        self.storage.after_commit()

    def logout_session(self, realm: str, client_id: str, secret: str | None, refresh: str) -> str:
        """The session a client's logout with its refresh token names (Keycloak's POST
        logout); the caller ends it (SingleSignOn.end_by_session)."""
        with self.storage.read() as r:
            self.cache.client(r, realm, client_id, secret)
            rt = r.sessions.refresh_with_session(security.hash_secret(refresh or ""))
        if rt is None or rt["client_id"] != client_id or rt["realm"] != realm:
            raise GrantRefused("Invalid refresh token")
        return str(rt["sid"])
