"""The token endpoint's grants: password, client_credentials, refresh_token (rotation, reuse
detection) and authorization_code (issued after the login page, PKCE). Sync methods: run
them in a thread.

Refresh tokens are opaque 256-bit values stored hashed, rotated on every use; presenting a
spent one revokes its whole session. A refresh is a session continuing, not a sign-in:
audited, not published as LoginSucceeded (docs/identity.md, "Passwords, logins").
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from lgsp.api.identity.v1 import events_pb2 as ev
from services.identity.adapters.unit_of_work import Repositories, Storage
from services.identity.domain import security
from services.identity.domain import sessions as rules
from services.identity.domain.access import ADMIN_CLI, APP_PASSWORD_AMR
from services.identity.domain.errors import (
    BadRequest,
    ClientNotAuthenticated,
    FlowNotAllowed,
    GrantRefused,
    Refused,
)
from services.identity.domain.model import Status
from services.identity.service_layer import ended
from services.identity.service_layer.cache import DirectoryCache
from services.identity.service_layer.keys import KeyStore
from services.identity.service_layer.logins import ClientContext, Logins
from services.identity.service_layer.realm_settings import RealmPolicies

Row = Any  # a stored record (SQLAlchemy RowMapping)

NOT_SET_UP = "Account is not fully set up"
SSO_TOUCH_EVERY = 30  # seconds: a refresh marks its SSO session in use at most this often


class Grants:
    def __init__(
        self,
        storage: Storage,
        keys: KeyStore,
        logins: Logins,
        cache: DirectoryCache,
        base_url: str,
        access_ttl: int = rules.ACCESS_TTL,
        sso: rules.SsoLifetimes = rules.DEFAULT_SSO,
        policies: RealmPolicies | None = None,
    ) -> None:
        self.storage = storage
        self.keys = keys
        self.logins = logins
        self.cache = cache
        self.base_url = base_url
        self.access_ttl = access_ttl
        self.sso = sso
        # The realm's settings (token and SSO lifetimes) when they can change over REST.
        self.policies = policies

    def _response(
        self,
        r: Repositories,
        realm: str,
        user: Row,
        client: Row,
        scope: str,
        session_id: str | None,
        nonce: str = "",
        amr: list[str] | None = None,
        auth: rules.Authentication | None = None,
    ) -> dict[str, Any]:
        ttl = client["token_ttl"] or (
            self.policies.current(realm, r).access_token_lifespan
            if self.policies
            else self.access_ttl
        )
        access, ident = rules.claims(
            rules.issuer(self.base_url, realm),
            realm,
            user,
            client,
            rules.with_composites(
                self.cache.roles_of(r, user["id"]), self.cache.composites(r, realm)
            ),
            scope,
            session_id,
            ttl,
            int(time.time()),
            auth,
            self.cache.client_roles_of(r, user["id"]),
        )
        if amr:
            access["amr"] = ident["amr"] = amr  # RFC 8176: how the user authenticated
        out: dict[str, Any] = {
            "access_token": self.keys.sign(access),
            "expires_in": ttl,
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": scope,
        }
        if session_id:
            refresh = security.new_secret()
            r.sessions.add_refresh(
                security.hash_secret(refresh), session_id, time.time(), rules.REFRESH_TTL
            )
            out["refresh_token"] = refresh
            out["refresh_expires_in"] = rules.REFRESH_TTL
            out["session_state"] = session_id
        if "openid" in scope.split():
            if nonce:
                ident["nonce"] = nonce
            out["id_token"] = self.keys.sign(ident)
        return out

    @staticmethod
    def _new_session(
        r: Repositories,
        realm: str,
        user_id: str,
        client_id: str,
        scope: str,
        auth: rules.Authentication,
        sso: Row | None = None,
    ) -> str:
        """A client session; started from an SSO session it ends no later than that one."""
        sid, now = str(uuid.uuid4()), time.time()
        r.sessions.add(
            id=sid,
            realm=realm,
            user_id=user_id,
            client_id=client_id,
            scope=scope,
            created_at=now,
            expires_at=sso["expires_at"] if sso else now + rules.SESSION_TTL,
            revoked_reason="",
            sso_session_id=sso["id"] if sso else None,
            **auth.stored(),
        )
        return sid

    # --- password and client credentials --------------------------------------------------

    def password_grant(
        self,
        realm: str,
        client_id: str,
        secret: str | None,
        username: str,
        password: str,
        totp: str,
        scope: str,
        ctx: ClientContext,
    ) -> dict[str, Any]:
        if not username or not password:
            raise BadRequest("Missing parameter: username and password")
        with self.storage.read() as r:
            client = self.cache.client(r, realm, client_id, secret)
        if not client["direct_grants"] or (
            client["secret_hash"] is None and client["client_id"] != ADMIN_CLI
        ):
            raise FlowNotAllowed("Client not allowed for direct access grants")
        if client["allow_app_passwords"]:
            letters = security.normalize_app_password(password)
            if letters is not None:
                return self._app_password_grant(realm, client, username, letters, scope, ctx)
        user = self.logins.check_password(
            realm,
            username,
            password,
            totp,
            client_id,
            ctx,
            app_password_client=client["allow_app_passwords"],
        )
        self.require_set_up(user)
        with self.storage.token_change() as uow:
            r = uow.repos
            # Decided in the transaction that issues the tokens: a lock that won meanwhile
            # refuses this sign-in.
            if self.logins.signed_in(uow, realm, user, client_id, ctx, password):
                scope = rules.granted_scope(scope, client)
                auth = rules.Authentication.password(time.time(), bool(user["totp_secret"]))
                sid = self._new_session(r, realm, user["id"], client_id, scope, auth)
                out = self._response(r, realm, user, client, scope, sid, auth=auth)
                uow.commit()
            else:
                uow.rollback()
                out = None
        if out is None:
            raise self.logins.refused_at_commit(realm, user, client_id, ctx)
        self.logins.committed()
        return out

    def require_set_up(self, user: Row) -> None:
        """Refuse an account with required actions pending (a temporary password included),
        whose password was right (Keycloak's "Account is not fully set up")."""
        if user["password_temporary"] or user["required_actions"]:
            self.logins.release(user)
            raise GrantRefused(NOT_SET_UP)

    def _app_password_grant(
        self, realm: str, client: Row, username: str, letters: str, scope: str, ctx: ClientContext
    ) -> dict[str, Any]:
        """The password grant with an app password, at a client that allows them: it stands
        in for the password and the second factor. An access token only: no session and no
        refresh token (a mail client signs in again on each connection; nothing is left to
        end), marked `amr: ["app_password"]` so that such a token cannot manage the
        account's app passwords."""
        client_id = client["client_id"]
        user, app_password_id = self.logins.check_app_password(
            realm, username, letters, client_id, ctx
        )
        self.require_set_up(user)
        method = ev.LOGIN_METHOD_APP_PASSWORD
        with self.storage.token_change() as uow:
            r = uow.repos
            if self.logins.signed_in(
                uow, realm, user, client_id, ctx, app_password_id=app_password_id
            ):
                scope = rules.granted_scope(scope, client)
                out = self._response(r, realm, user, client, scope, None, amr=[APP_PASSWORD_AMR])
                uow.commit()
            else:
                uow.rollback()
                out = None
        if out is None:
            raise self.logins.refused_at_commit(realm, user, client_id, ctx, method)
        self.logins.committed()
        return out

    def client_credentials(
        self, realm: str, client_id: str, secret: str | None, scope: str, ctx: ClientContext
    ) -> dict[str, Any]:
        with self.storage.token_change() as uow:
            r = uow.repos
            try:
                client = self.cache.client(r, realm, client_id, secret)
                if client["secret_hash"] is None:
                    raise ClientNotAuthenticated("Public client: no client credentials")
                if not client["service_user_id"]:
                    raise FlowNotAllowed("Client not enabled to retrieve service account")
            except Refused as exc:
                uow.rollback()
                self.logins.client_failed(realm, client_id, ctx, exc)
                raise
            user = self.cache.account(r, client["service_user_id"])
            # No id_token unless asked for: a client system is not a person signing in.
            scope = rules.granted_scope(scope or "", client, default="profile email")
            out = self._response(r, realm, user, client, scope, None)
            self.logins.record(
                uow,
                ok=True,
                realm=realm,
                login_name=client_id,
                user_id=f"client:{client_id}",
                client_id=client_id,
                method=ev.LOGIN_METHOD_CLIENT_CREDENTIALS,
                ctx=ctx,
            )
            uow.commit()
        self.logins.committed()
        return out

    # --- refresh --------------------------------------------------------------------------

    def refresh(
        self, realm: str, client_id: str, secret: str | None, token: str, ctx: ClientContext
    ) -> dict[str, Any]:
        if not token:
            raise BadRequest("Missing parameter: refresh_token")
        reuse = False
        with self.storage.token_change() as uow:
            r = uow.repos
            client = self.cache.client(r, realm, client_id, secret)
            now = time.time()
            rt = r.sessions.refresh_with_session(security.hash_secret(token))
            if rt is None:
                raise GrantRefused("Invalid refresh token")
            if rt["client_id"] != client_id or rt["realm"] != realm:
                raise GrantRefused(
                    "Invalid refresh token. Token client and authorized client don't match"
                )
            if rt["used_at"] is not None:
                # A spent token came back: someone holds a copy. End the whole family.
                gone = r.sessions.revoke(rt["sid"], "refresh token reuse", now)
                ended.sessions_ended(uow, gone, ended.REFRESH_TOKEN_REUSED, now)
                r.audit.write(
                    rt["user_id"],
                    "refresh.reuse",
                    rt["user_id"],
                    "session_revoked",
                    ctx.remote_ip,
                    session=rt["sid"],
                )
                uow.commit()
                reuse = True
            elif (
                not rules.session_active(rt["session_revoked_at"], rt["session_expires_at"], now)
                or rt["expires_at"] <= now
                or (rt["sso_session_id"] and not self._sso_alive(r, realm, rt, now))
            ):
                raise GrantRefused("Session not active")
            else:
                user = self.cache.account(r, rt["user_id"])
                if user["status"] == Status.DISABLED:
                    raise GrantRefused("Account disabled")
                if r.sessions.spend_refresh(rt["token_hash"], now) != 1:
                    raise GrantRefused("Invalid refresh token")  # a concurrent refresh won
                if rt["sso_session_id"] and now - rt["sso_last_seen_at"] > SSO_TOUCH_EVERY:
                    r.sessions.touch_sso(rt["sso_session_id"], now)  # in use: not idle
                auth = rules.Authentication.of(rt)
                out = self._response(r, realm, user, client, rt["scope"], rt["sid"], auth=auth)
                r.audit.write(
                    user["id"],
                    "refresh",
                    user["id"],
                    remote_ip=ctx.remote_ip,
                    client_id=client_id,
                    session=rt["sid"],
                )
                uow.commit()
        if reuse:
            self.logins.committed()
            raise GrantRefused("Refresh token reused: session revoked")
        return out

    def _sso_alive(self, r: Repositories, realm: str, rt: Row, now: float) -> bool:
        lifetimes = self.policies.current(realm, r).sso if self.policies else self.sso
        return rules.sso_active(
            {
                "revoked_at": rt["sso_revoked_at"],
                "expires_at": rt["sso_expires_at"],
                "last_seen_at": rt["sso_last_seen_at"],
            },
            lifetimes,
            now,
        )

    # --- authorization code + PKCE --------------------------------------------------------

    def issue_code(
        self,
        realm: str,
        client: Row,
        user: Row,
        redirect_uri: str,
        challenge: str,
        method: str,
        scope: str,
        nonce: str,
        ctx: ClientContext,
        sso: Row,
        *,
        new_sso: bool = False,
        signed_in: bool = True,
    ) -> tuple[str, str]:
        """A code for a client session started from the SSO session `sso` (stored here when
        `new_sso`): after the login page (`signed_in`: the sign-in is recorded), or at once
        when the browser's SSO session is reused (the account must still be active).
        Returns (code, client session id)."""
        code = security.new_secret()
        auth = rules.Authentication.of(sso)
        assert auth is not None
        with self.storage.token_change() as uow:
            r = uow.repos
            now = time.time()
            if new_sso:
                r.sessions.add_sso(**sso)
            elif signed_in:  # signed in again within the same SSO session (prompt, max_age)
                r.sessions.reauthenticated(sso["id"], now, **auth.stored())
            else:
                r.sessions.touch_sso(sso["id"], now)
            scope = rules.granted_scope(scope, client)
            sid = self._new_session(r, realm, user["id"], client["client_id"], scope, auth, sso)
            r.sessions.add_code(
                code_hash=security.hash_secret(code),
                realm=realm,
                client_id=client["client_id"],
                user_id=user["id"],
                redirect_uri=redirect_uri,
                code_challenge=challenge,
                challenge_method=method,
                scope=scope,
                nonce=nonce,
                expires_at=time.time() + rules.CODE_TTL,
                session_id=sid,
            )
            if signed_in:
                went_through = self.logins.signed_in(uow, realm, user, client["client_id"], ctx)
            else:
                went_through = r.accounts.status(user["id"]) == Status.ACTIVE
                r.audit.write(
                    user["id"],
                    "login.sso",
                    user["id"],
                    remote_ip=ctx.remote_ip,
                    client_id=client["client_id"],
                    session=sid,
                    sso_session=sso["id"],
                )
            if went_through:
                uow.commit()
            else:
                uow.rollback()
        if not went_through:
            if not signed_in:
                raise GrantRefused("Account disabled")
            raise self.logins.refused_at_commit(realm, user, client["client_id"], ctx)
        self.logins.committed()
        return code, sid

    def code_grant(
        self,
        realm: str,
        client_id: str,
        secret: str | None,
        code: str,
        redirect_uri: str,
        verifier: str,
    ) -> dict[str, Any]:
        if not code:
            raise BadRequest("Missing parameter: code")
        replay = False
        with self.storage.token_change() as uow:
            r = uow.repos
            client = self.cache.client(r, realm, client_id, secret)
            row = r.sessions.code(security.hash_secret(code))
            now = time.time()
            if row is None or row["realm"] != realm or row["client_id"] != client_id:
                raise GrantRefused("Code not valid")
            if row["used_at"] is not None:
                # RFC 6749 §4.1.2: a replayed code revokes what it issued.
                gone = r.sessions.revoke(row["session_id"], "authorization code replay", now)
                ended.sessions_ended(uow, gone, ended.REVOKED, now)
                r.audit.write(row["user_id"], "code.replay", row["user_id"], "session_revoked")
                uow.commit()
                replay = True
            else:
                r.sessions.spend_code(row["code_hash"], now)
                uow.commit()  # spent even if the checks below fail: a code is tried once
        if replay:
            self.logins.committed()
            raise GrantRefused("Code already used")
        rules.check_code(row, now, redirect_uri, verifier)
        with self.storage.token_change() as uow:
            r = uow.repos
            session = r.sessions.one(row["session_id"])
            if session is None or not rules.session_active(
                session["revoked_at"], session["expires_at"], now
            ):
                raise GrantRefused("Session not active")  # logged out since the code was issued
            user = r.accounts.one(row["user_id"])
            out = self._response(
                r,
                realm,
                user,
                client,
                row["scope"],
                row["session_id"],
                row["nonce"],
                auth=rules.Authentication.of(session),
            )
            uow.commit()
        return out
