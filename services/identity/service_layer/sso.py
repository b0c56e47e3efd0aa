"""The browser's SSO session: found from its cookie, started by a sign-in on the login page,
reused by every client's authorization request until it idles out or reaches its maximum
life, and ended by a logout an application starts (RP-initiated, or with a refresh token),
which ends every client session started from it: SessionEnded for each on the sessions topic
(the platform's way of refusing ended sessions' tokens everywhere, service_layer/ended.py)
and a logout token to each client that registered a back-channel logout URI."""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from services.identity.adapters import backchannel
from services.identity.adapters.unit_of_work import Storage
from services.identity.domain import security
from services.identity.domain import sessions as rules
from services.identity.domain.model import Status
from services.identity.service_layer import ended
from services.identity.service_layer.keys import KeyStore
from services.identity.service_layer.realm_settings import RealmPolicies

Row = Any
log = logging.getLogger("services.identity.sso")
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TTL = 120


class SingleSignOn:
    def __init__(
        self,
        storage: Storage,
        keys: KeyStore,
        base_url: str,
        lifetimes: rules.SsoLifetimes,
        deliver: Callable[[str, str, str], bool] = backchannel.deliver,
        policies: RealmPolicies | None = None,
    ) -> None:
        self.storage = storage
        self.keys = keys
        self.base_url = base_url
        self.lifetimes = lifetimes
        self.deliver = deliver
        self.policies = policies
        # Account changes (disable, delete, lock, password reset) hand their ended sessions
        # here: the logout tokens go out in the background, so an admin call or a refused
        # sign-in never waits on a slow client.
        self._background = ThreadPoolExecutor(2, thread_name_prefix="backchannel")

    def find(self, realm: str, cookie: str) -> Row | None:
        """The live SSO session a cookie names in this realm (its account still active)."""
        sso_id, _, secret = cookie.partition(".")
        if len(sso_id) != 36 or not secret or len(secret) > 128:
            return None
        with self.storage.read() as r:
            row = r.sessions.sso(sso_id)
            if row is None or row["realm"] != realm:
                return None
            if not hmac.compare_digest(row["secret_hash"], security.hash_secret(secret)):
                return None
            if not rules.sso_active(row, self.lifetimes_of(realm, r), time.time()):
                return None
            if r.accounts.status(row["user_id"]) != Status.ACTIVE:
                return None
        return row

    def new(
        self, realm: str, user_id: str, auth: rules.Authentication, now: float
    ) -> tuple[dict[str, Any], str]:
        """A new SSO session's row (stored with the code it issues first) and its cookie."""
        secret = security.new_secret()
        row = {
            "id": str(uuid.uuid4()),
            "realm": realm,
            "user_id": user_id,
            "secret_hash": security.hash_secret(secret),
            "created_at": now,
            "last_seen_at": now,
            "expires_at": now + self.lifetimes_of(realm).max,
            "revoked_at": None,
            "revoked_reason": "",
            **auth.stored(),
        }
        return row, f"{row['id']}.{secret}"

    def lifetimes_of(self, realm: str, r: Any = None) -> rules.SsoLifetimes:
        """The realm's SSO lifetimes in force (changed over REST, else the configured ones)."""
        return self.policies.current(realm, r).sso if self.policies else self.lifetimes

    def again(self, row: Row, auth: rules.Authentication) -> dict[str, Any]:
        """The same SSO session after the user signed in again (prompt=login, max_age)."""
        return {**row, **auth.stored()}

    # --- ending ---------------------------------------------------------------------------

    def end(self, realm: str, sso_id: str, reason: str = "logout") -> int:
        """End an SSO session and every client session started from it; returns how many
        client sessions ended."""
        return self._end(
            realm,
            lambda uow, now: uow.repos.sessions.end_sso(sso_id, reason, now),
            reason,
            sso_session=sso_id,
        )

    def end_by_session(self, realm: str, sid: str, reason: str = "logout") -> int:
        """A logout naming one client session (an ID token's `sid`, a refresh token): the
        SSO session it belongs to ends with all its clients; a direct grant's session (no
        SSO session) ends alone."""
        with self.storage.read() as r:
            row = r.sessions.one(sid)
        if row is None or row["realm"] != realm:
            return 0
        if row["sso_session_id"]:
            return self.end(realm, row["sso_session_id"], reason)
        return self._end(
            realm,
            lambda uow, now: uow.repos.sessions.revoke(sid, reason, now),
            reason,
            session=sid,
        )

    def _end(
        self,
        realm: str,
        remove: Callable[[Any, float], list[Row]],
        reason: str,
        **details: str,
    ) -> int:
        """`remove(uow, now)` ends sessions; each ended one is published and audited, and
        its clients with a back-channel logout URI are told after the commit."""
        with self.storage.token_change() as uow:
            now = time.time()
            gone = remove(uow, now)
            ended.sessions_ended(uow, gone, ended.LOGOUT, now)
            self._audit(uow, gone, reason, **details)
            targets = uow.repos.clients.backchannel_uris(realm, {g["client_id"] for g in gone})
            uow.commit()
        self.storage.after_commit()
        self.notify(realm, gone, targets)
        return len(gone)

    @staticmethod
    def _audit(uow: Any, gone: list[Row], reason: str, **details: str) -> None:
        if gone:
            user = gone[0]["user_id"]
            clients = ",".join(sorted({g["client_id"] for g in gone}))
            uow.repos.audit.write(user, "logout", user, reason=reason, clients=clients, **details)

    def notify_ended(self, realm: str, gone: list[Row]) -> None:
        """Back-channel logout for client sessions another use case ended (an admin's
        users/{id}/logout)."""
        if not gone:
            return
        with self.storage.read() as r:
            targets = r.clients.backchannel_uris(realm, {g["client_id"] for g in gone})
        self.notify(realm, gone, targets)

    def notify_later(self, gone: list[Row]) -> None:
        """Back-channel logout, in the background, for client sessions an account change
        ended (Storage.on_sessions_ended)."""
        by_realm: dict[str, list[Row]] = {}
        for g in gone:
            by_realm.setdefault(g["realm"], []).append(g)
        for realm, rows in by_realm.items():
            self._background.submit(self._notify_logged, realm, rows)

    def _notify_logged(self, realm: str, rows: list[Row]) -> None:
        try:
            self.notify_ended(realm, rows)
        except Exception:  # a worker thread: nobody else would see it
            log.exception("back-channel logout of %d sessions failed", len(rows))

    def logout_token(self, realm: str, session: Row, now: float) -> str:
        """OIDC Back-Channel Logout §2.4: sub and sid (the `sid` of that client's tokens)."""
        claims = {
            "iss": rules.issuer(self.base_url, realm),
            "aud": session["client_id"],
            "iat": int(now),
            "exp": int(now) + LOGOUT_TOKEN_TTL,
            "jti": str(uuid.uuid4()),
            "sub": session["user_id"],
            "sid": session["id"],
            "events": {BACKCHANNEL_EVENT: {}},
        }
        return self.keys.sign(claims, typ="logout+jwt")

    def notify(self, realm: str, gone: Iterable[Row], targets: dict[str, str]) -> None:
        """Send the logout tokens (after the commit: the sessions have ended whatever the
        clients answer), in parallel so that one slow client does not hold up the others."""
        jobs = [(targets[g["client_id"]], g) for g in gone if g["client_id"] in targets]
        if not jobs:
            return
        now = time.time()
        with ThreadPoolExecutor(min(8, len(jobs))) as pool:
            for uri, g in jobs:
                pool.submit(self.deliver, uri, self.logout_token(realm, g, now), g["client_id"])
