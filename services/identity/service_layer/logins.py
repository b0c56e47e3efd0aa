"""Sign-ins: checking a username and password (and TOTP) or an app password, the
per-account lockout and the per-address throttle, and the audit row and event every sign-in
writes, success or failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from lgsp.api.identity.v1 import events_pb2 as ev
from services.identity.adapters.unit_of_work import IdentityUnitOfWork, Storage
from services.identity.domain import security
from services.identity.domain.access import REALM
from services.identity.domain.errors import (
    BadCredentials,
    GrantRefused,
    Refused,
    Throttled,
    UnknownClient,
)
from services.identity.domain.model import Status
from services.identity.service_layer import ended
from services.identity.service_layer.app_passwords import DEFAULT_PER_USER
from services.identity.service_layer.realm_settings import RealmPolicies

Row = Any  # a stored record (SQLAlchemy RowMapping)


@dataclass
class ClientContext:
    """Request facts the audit log and login events record."""

    remote_ip: str = ""
    user_agent: str = ""


# The answer to a wrong password, an unknown username and a locked or disabled account alike.
BAD_CREDENTIALS = "Invalid user credentials"
# The answer at a mail client to the right password of an account with a second factor.
NEEDS_APP_PASSWORD = (
    "Account uses two-step verification: sign in to this client with an app password"
)

V = TypeVar("V")


@dataclass(frozen=True)
class Attempt:
    """One sign-in attempt's facts, for its audit row and event."""

    realm: str
    username: str
    client_id: str
    ctx: ClientContext
    method: int


def _outcome(ok: bool, reason: int) -> str:
    if ok:
        return "ok"
    name = ev.LoginFailureReason.Name(ev.LoginFailureReason.ValueType(reason))
    return name.removeprefix("LOGIN_FAILURE_REASON_").lower()


@dataclass
class Logins:
    storage: Storage
    lockout: security.LockoutPolicy = field(default_factory=security.LockoutPolicy)
    throttle: security.AddressThrottle = field(default_factory=security.AddressThrottle)
    # argon2 verifies a wrong app password costs: the most an account may hold
    # (identity.app_passwords_per_user).
    app_password_verifies: int = DEFAULT_PER_USER
    # The realm's settings (brute-force detection) when they can change over REST.
    policies: RealmPolicies | None = None

    def lockout_of(self, realm: str, r: Any = None) -> security.LockoutPolicy:
        return self.policies.current(realm, r).lockout if self.policies else self.lockout

    def committed(self) -> None:
        """Login events wake the relay like any other event. (Leaving them to its 0.5 s poll
        was tried: its larger batches hold SQLite's write lock longer and token requests then
        stall in the busy handler.)"""
        self.storage.after_commit()

    def record(
        self,
        uow: IdentityUnitOfWork,
        *,
        ok: bool,
        realm: str,
        login_name: str,
        user_id: str,
        client_id: str,
        method: int,
        ctx: ClientContext,
        reason: int = 0,
        failures: int = 0,
        app_password_id: str = "",
    ) -> None:
        """The audit row of a sign-in and, in realm lgsp, its LoginSucceeded/LoginFailed."""
        details: dict[str, Any] = {"app_password": app_password_id} if app_password_id else {}
        uow.repos.audit.write(
            user_id,
            "login",
            user_id or login_name[:120],
            _outcome(ok, reason),
            ctx.remote_ip,
            client_id=client_id,
            method=ev.LoginMethod.Name(ev.LoginMethod.ValueType(method)),
            login_name=login_name[:120],
            **details,
        )
        if realm != REALM:
            return
        ua = ctx.user_agent[:256]
        if ok:
            msg: Any = ev.LoginSucceeded(
                subject=user_id,
                login_name=login_name,
                client_id=client_id,
                method=method,  # type: ignore[arg-type]
                remote_ip=ctx.remote_ip,
                user_agent=ua,
            )
        else:
            msg = ev.LoginFailed(
                login_name=login_name[:120],
                user_id=user_id,
                client_id=client_id,
                method=method,  # type: ignore[arg-type]
                reason=reason,  # type: ignore[arg-type]
                consecutive_failures=failures,
                remote_ip=ctx.remote_ip,
                user_agent=ua,
            )
        uow.emit(msg, subject=user_id or f"login:{login_name[:100]}")

    def _fail(
        self,
        realm: str,
        login_name: str,
        user: Row | None,
        client_id: str,
        ctx: ClientContext,
        reason: int,
        attempt: int | None = None,
        method: int = ev.LOGIN_METHOD_PASSWORD,
    ) -> None:
        """Record a refused sign-in. `attempt`: the number of the failed attempt this was
        (reserve_attempt); the one that reaches the limit locks the account."""
        self.throttle.failed(ctx.remote_ip)
        with self.storage.token_change() as uow:
            failures = attempt or 0
            now = time.time()
            lockout = self.lockout_of(realm, uow.repos)
            lock_until = lockout.after_failure(failures, now) if attempt else None
            if user is not None and lock_until is not None:
                if uow.repos.accounts.lock(user["id"], lock_until):
                    if realm == REALM:
                        uow.emit(
                            ev.UserLocked(
                                user_id=user["id"],
                                username=user["username"],
                                failed_attempts=failures,
                            ),
                            subject=user["id"],
                        )
                    gone = uow.repos.sessions.revoke_open(now, "user locked", user_id=user["id"])
                    ended.account_ended(uow, gone, user["id"], realm, now)
            self.record(
                uow,
                ok=False,
                realm=realm,
                login_name=login_name,
                user_id=user["id"] if user else "",
                client_id=client_id,
                method=method,
                ctx=ctx,
                reason=reason,
                failures=failures,
            )
            uow.commit()
        self.committed()
        self.storage.announce_ended(uow)  # a lock ended the account's sessions

    def refused_at_commit(
        self,
        realm: str,
        user: Row,
        client_id: str,
        ctx: ClientContext,
        method: int = ev.LOGIN_METHOD_PASSWORD,
    ) -> Refused:
        """A sign-in whose account was locked (or disabled) while its password was checked,
        or whose app password was revoked meanwhile: recorded, and answered as any wrong
        password is."""
        self._fail(
            realm,
            user["username"],
            user,
            client_id,
            ctx,
            ev.LOGIN_FAILURE_REASON_LOCKED,
            method=method,
        )
        return BadCredentials(BAD_CREDENTIALS)

    def release(self, user: Row) -> None:
        """The password was right but the sign-in is refused for another reason."""
        with self.storage.token_change() as uow:
            uow.repos.accounts.release_attempt(user["id"])
            uow.commit()

    def _attempt(self, a: Attempt, verify: Callable[[Row | None], V | None]) -> tuple[Row, int, V]:
        """The account behind a username whose secret `verify` accepts, with the attempt's
        number and what `verify` answered; or Refused.

        Per-address throttling first. Then an attempt is reserved on the account, atomically,
        before the (slow) argon2 verify: at most `lockout.max_failures` wrong secrets are
        ever checked however many requests race, and the attempt that reaches the limit is
        the one that locks. A locked or disabled account and an unknown username are answered
        alike, after `verify(None)` (an argon2 verify against a dummy hash: no one learns who
        exists, and a locked account is no password oracle). Every refusal is audited."""
        if self.throttle.blocked(a.ctx.remote_ip):
            raise Throttled("Too many failed sign-ins from this address")
        user = None
        if a.username:
            with self.storage.read() as r:
                user = r.accounts.find(a.realm, a.username)
        if user is not None and user["service_client_id"]:
            user = None  # service accounts never sign in with a password
        attempt = None
        if user is not None:
            limit = self.lockout_of(a.realm).max_failures
            with self.storage.token_change() as uow:
                attempt = uow.repos.accounts.reserve_attempt(user["id"], limit, time.time())
                uow.commit()
        # No slot (unknown, locked or disabled): checked against the dummy hash all the same.
        proof = verify(user if attempt else None)
        if user is None:
            raise self._refuse(a, None, ev.LOGIN_FAILURE_REASON_UNKNOWN_ACCOUNT)
        if attempt is None:
            disabled = user["status"] == Status.DISABLED
            reason = (
                ev.LOGIN_FAILURE_REASON_DISABLED if disabled else ev.LOGIN_FAILURE_REASON_LOCKED
            )
            raise self._refuse(a, user, reason)
        if proof is None:
            raise self._refuse(a, user, ev.LOGIN_FAILURE_REASON_BAD_CREDENTIALS, counted=attempt)
        return user, attempt, proof

    def _refuse(
        self,
        a: Attempt,
        user: Row | None,
        reason: int,
        error: Refused | None = None,
        counted: int | None = None,
    ) -> Refused:
        self._fail(a.realm, a.username, user, a.client_id, a.ctx, reason, counted, a.method)
        return error or BadCredentials(BAD_CREDENTIALS)

    def _agency_active(self, a: Attempt, user: Row) -> None:
        if user["agency_code"]:
            with self.storage.read() as r:
                status = r.agencies.status(user["agency_code"])
            if status == Status.DISABLED:
                self.release(user)
                error = GrantRefused("Account disabled (agency dissolved)")
                raise self._refuse(a, user, ev.LOGIN_FAILURE_REASON_DISABLED, error)

    def check_password(
        self,
        realm: str,
        username: str,
        password: str,
        totp: str,
        client_id: str,
        ctx: ClientContext,
        *,
        app_password_client: bool = False,
    ) -> Row:
        """The account behind a username and password (and TOTP when enabled), or Refused
        (`_attempt` tells how). The caller ends a returned account's attempt with
        `signed_in` (which refuses if a lock won meanwhile) or `release`.

        At a client that takes app passwords (a mail server), an account with a second
        factor and no code given is refused with a clear error once its password has been
        found right, and that attempt is not counted: a mail client cannot send a code, and
        retrying with the right password must not lock the official out."""
        a = Attempt(realm, username, client_id, ctx, ev.LOGIN_METHOD_PASSWORD)

        def verify(user: Row | None) -> bool | None:
            return security.verify_password(user and user["password_hash"], password) or None

        user, attempt, _ = self._attempt(a, verify)
        second_factor = ev.LOGIN_FAILURE_REASON_BAD_SECOND_FACTOR
        if user["totp_secret"] and app_password_client and not totp:
            self.release(user)
            raise self._refuse(a, user, second_factor, GrantRefused(NEEDS_APP_PASSWORD))
        if user["totp_secret"] and not security.verify_totp(user["totp_secret"], totp):
            error = BadCredentials("Invalid one-time code (totp)")
            raise self._refuse(a, user, second_factor, error, counted=attempt)
        self._agency_active(a, user)
        return user

    def check_app_password(
        self, realm: str, username: str, letters: str, client_id: str, ctx: ClientContext
    ) -> tuple[Row, str]:
        """(account, app password id) for a username and one of its live app passwords
        (`letters`: security.normalize_app_password of what was typed), or Refused exactly as
        a wrong password is: the same attempt slots, lockout, throttle and audit. It stands
        in for password and second factor; the caller checks the client allows it."""
        a = Attempt(realm, username, client_id, ctx, ev.LOGIN_METHOD_APP_PASSWORD)

        def verify(user: Row | None) -> str | None:
            stored = []
            if user is not None:
                with self.storage.read() as r:
                    stored = r.app_passwords.for_sign_in(user["id"])
            for row in stored:
                if security.verify_password(row["secret_hash"], letters):
                    return str(row["id"])
            # A wrong one costs the same argon2 time whoever it was for (unknown, locked, with
            # none or with many): the time tells nobody who exists or how many they hold.
            for _ in range(self.app_password_verifies - len(stored)):
                security.verify_password(None, letters)
            return None

        user, _, app_password_id = self._attempt(a, verify)
        self._agency_active(a, user)
        return user, app_password_id

    def succeeded(self, uow: IdentityUnitOfWork, user: Row, password: str) -> bool:
        """A sign-in went through if the account is still active now: reset the failure
        count, re-hash a password stored with weaker parameters (when the sign-in gave it).
        False: a lock won."""
        values: dict[str, Any] = {"last_login_at": time.time()}
        if password and user["password_hash"] and security.needs_rehash(user["password_hash"]):
            values["password_hash"] = security.hash_password(password)
        return uow.repos.accounts.signed_in(user["id"], **values)

    def signed_in(
        self,
        uow: IdentityUnitOfWork,
        realm: str,
        user: Row,
        client_id: str,
        ctx: ClientContext,
        password: str = "",
        app_password_id: str = "",
    ) -> bool:
        """A password (or app password) sign-in went through: the account's state, the
        app password's last use, the audit row, the event. False (nothing written): the
        account was locked or disabled, or the app password revoked, meanwhile; roll back
        and answer `refused_at_commit`."""
        if not self.succeeded(uow, user, password):
            return False
        if app_password_id and not uow.repos.app_passwords.used(app_password_id, time.time()):
            return False
        self.record(
            uow,
            ok=True,
            realm=realm,
            login_name=user["username"],
            user_id=user["id"],
            client_id=client_id,
            method=ev.LOGIN_METHOD_APP_PASSWORD if app_password_id else ev.LOGIN_METHOD_PASSWORD,
            ctx=ctx,
            app_password_id=app_password_id,
        )
        return True

    def client_failed(self, realm: str, client_id: str, ctx: ClientContext, exc: Refused) -> None:
        """Record a refused client_credentials sign-in."""
        self.throttle.failed(ctx.remote_ip)
        reason = (
            ev.LOGIN_FAILURE_REASON_UNKNOWN_ACCOUNT
            if isinstance(exc, UnknownClient)
            else ev.LOGIN_FAILURE_REASON_BAD_CREDENTIALS
        )
        with self.storage.token_change() as uow:
            self.record(
                uow,
                ok=False,
                realm=realm,
                login_name=client_id[:120],
                user_id="",
                client_id=client_id[:120],
                method=ev.LOGIN_METHOD_CLIENT_CREDENTIALS,
                ctx=ctx,
                reason=reason,
            )
            uow.commit()
        self.committed()
