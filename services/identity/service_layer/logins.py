"""Sign-ins: checking a username and password (and TOTP), the per-account lockout and the
per-address throttle, and the audit row and event every sign-in writes, success or failure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

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

Row = Any  # a stored record (SQLAlchemy RowMapping)


@dataclass
class ClientContext:
    """Request facts the audit log and login events record."""

    remote_ip: str = ""
    user_agent: str = ""


# The answer to a wrong password, an unknown username and a locked or disabled account alike.
BAD_CREDENTIALS = "Invalid user credentials"


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
    ) -> None:
        """The audit row of a sign-in and, in realm lgsp, its LoginSucceeded/LoginFailed."""
        uow.repos.audit.write(
            user_id,
            "login",
            user_id or login_name[:120],
            _outcome(ok, reason),
            ctx.remote_ip,
            client_id=client_id,
            method=ev.LoginMethod.Name(ev.LoginMethod.ValueType(method)),
            login_name=login_name[:120],
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
    ) -> None:
        """Record a refused sign-in. `attempt`: the number of the failed attempt this was
        (reserve_attempt); the one that reaches the limit locks the account."""
        self.throttle.failed(ctx.remote_ip)
        with self.storage.token_change() as uow:
            failures = attempt or 0
            now = time.time()
            lock_until = self.lockout.after_failure(failures, now) if attempt else None
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
                method=ev.LOGIN_METHOD_PASSWORD,
                ctx=ctx,
                reason=reason,
                failures=failures,
            )
            uow.commit()
        self.committed()

    def refused_at_commit(
        self, realm: str, user: Row, client_id: str, ctx: ClientContext
    ) -> Refused:
        """A sign-in whose account was locked (or disabled) while its password was checked:
        recorded, and answered as any wrong password is."""
        self._fail(realm, user["username"], user, client_id, ctx, ev.LOGIN_FAILURE_REASON_LOCKED)
        return BadCredentials(BAD_CREDENTIALS)

    def release(self, user: Row) -> None:
        """The password was right but the sign-in is refused for another reason."""
        with self.storage.token_change() as uow:
            uow.repos.accounts.release_attempt(user["id"])
            uow.commit()

    def check_password(
        self,
        realm: str,
        username: str,
        password: str,
        totp: str,
        client_id: str,
        ctx: ClientContext,
    ) -> Row:
        """The account behind a username and password (and TOTP when enabled), or Refused.

        Per-address throttling first. Then an attempt is reserved on the account, atomically,
        before the (slow) argon2 verify: at most `lockout.max_failures` wrong passwords are
        ever checked however many requests race, and the attempt that reaches the limit is
        the one that locks. A locked or disabled account and an unknown username are answered
        alike, after an argon2 verify against a dummy hash (no one learns who exists, and a
        locked account is no password oracle). The caller ends a returned account's attempt
        with `signed_in` (which refuses if a lock won meanwhile) or `release`. Every refusal
        is audited."""
        if self.throttle.blocked(ctx.remote_ip):
            raise Throttled("Too many failed sign-ins from this address")
        user = None
        if username:
            with self.storage.read() as r:
                user = r.accounts.find(realm, username)
        if user is not None and user["service_client_id"]:
            user = None  # service accounts never sign in with a password
        attempt = None
        if user is not None:
            with self.storage.token_change() as uow:
                attempt = uow.repos.accounts.reserve_attempt(
                    user["id"], self.lockout.max_failures, time.time()
                )
                uow.commit()
        # No slot (unknown, locked or disabled): checked against the dummy hash all the same.
        stored = user["password_hash"] if attempt and user is not None else None
        ok = security.verify_password(stored, password)

        def refuse(reason: int, error: Refused, counted: int | None = None) -> Refused:
            self._fail(realm, username, user, client_id, ctx, reason, counted)
            return error

        if user is None:
            raise refuse(ev.LOGIN_FAILURE_REASON_UNKNOWN_ACCOUNT, BadCredentials(BAD_CREDENTIALS))
        if attempt is None:
            reason = (
                ev.LOGIN_FAILURE_REASON_DISABLED
                if user["status"] == Status.DISABLED
                else ev.LOGIN_FAILURE_REASON_LOCKED
            )
            raise refuse(reason, BadCredentials(BAD_CREDENTIALS))
        if not ok:
            raise refuse(
                ev.LOGIN_FAILURE_REASON_BAD_CREDENTIALS, BadCredentials(BAD_CREDENTIALS), attempt
            )
        if user["totp_secret"] and not security.verify_totp(user["totp_secret"], totp):
            raise refuse(
                ev.LOGIN_FAILURE_REASON_BAD_SECOND_FACTOR,
                BadCredentials("Invalid one-time code (totp)"),
                attempt,
            )
        if user["agency_code"]:
            with self.storage.read() as r:
                status = r.agencies.status(user["agency_code"])
            if status == Status.DISABLED:
                self.release(user)
                raise refuse(
                    ev.LOGIN_FAILURE_REASON_DISABLED,
                    GrantRefused("Account disabled (agency dissolved)"),
                )
        return user

    def succeeded(self, uow: IdentityUnitOfWork, user: Row, password: str) -> bool:
        """A sign-in went through if the account is still active now: reset the failure
        count, re-hash a password stored with weaker parameters. False: a lock won."""
        values: dict[str, Any] = {"last_login_at": time.time()}
        if user["password_hash"] and security.needs_rehash(user["password_hash"]):
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
    ) -> bool:
        """A password sign-in went through: the account's state, the audit row, the event.
        False (nothing written): the account was locked or disabled meanwhile; roll back and
        answer `refused_at_commit`."""
        if not self.succeeded(uow, user, password):
            return False
        self.record(
            uow,
            ok=True,
            realm=realm,
            login_name=user["username"],
            user_id=user["id"],
            client_id=client_id,
            method=ev.LOGIN_METHOD_PASSWORD,
            ctx=ctx,
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
