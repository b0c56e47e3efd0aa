"""App passwords: an official makes, lists and revokes their own; administrators list and
revoke a user's; disabling, deleting an account or resetting its password revokes them all
(as Google does on a password change). Signing in with one: logins.check_app_password and
grants (the password grant of a client that allows them)."""

from __future__ import annotations

import uuid

from lgsp.api.identity.v1 import events_pb2 as ev
from lgsp.api.identity.v1 import identity_pb2 as pb
from services.identity.adapters import proto
from services.identity.adapters.unit_of_work import IdentityUnitOfWork, Storage
from services.identity.domain import model, security
from services.identity.domain.access import REALM, Actor, require_own_account
from services.identity.domain.errors import FailedPrecondition, Invalid, NotFound
from services.identity.domain.model import Status
from services.identity.service_layer.common import DirectoryUseCases, now, require_agency_admin

DEFAULT_PER_USER = 10


def revoke_all(uow: IdentityUnitOfWork, actor: Actor, user_id: str, realm: str, reason: str) -> int:
    """Revoke every live app password of an account in a change's unit of work (its event per
    app password with it); how many."""
    gone = uow.repos.app_passwords.revoke(user_id, None, now(), reason)
    _revoked(uow, actor, user_id, realm, reason, gone)
    return len(gone)


def _revoked(
    uow: IdentityUnitOfWork, actor: Actor, user_id: str, realm: str, reason: str, rows: list
) -> None:
    for row in rows:
        uow.repos.audit.write(
            actor.id,
            "app_password.revoke",
            user_id,
            remote_ip=actor.remote_ip,
            app_password=row["id"],
            reason=reason,
        )
        if realm == REALM:
            event = ev.AppPasswordRevoked(
                user_id=user_id,
                app_password_id=row["id"],
                name=row["name"],
                reason=reason,
                actor_id=actor.id,
            )
            uow.emit(event, subject=user_id)


def _check_id(app_password_id: str, field: str = "id") -> str:
    try:
        return str(uuid.UUID(app_password_id))
    except ValueError:
        raise Invalid(field, "must be an app password id (UUID)") from None


class AppPasswords(DirectoryUseCases):
    def __init__(self, storage: Storage, per_user: int = DEFAULT_PER_USER) -> None:
        super().__init__(storage)
        self.per_user = per_user

    # --- the official's own -----------------------------------------------------------------

    def create(self, actor: Actor, name: str) -> tuple[pb.AppPassword, str]:
        """A new app password of the caller: (it, its secret, shown this once)."""
        user_id = require_own_account(actor)
        name = model.check_app_password_name(name)
        secret = security.new_app_password()
        letters = security.normalize_app_password(secret)
        assert letters is not None
        secret_hash = security.hash_password(letters)  # outside the transaction: ~15 ms
        with self.change() as uow:
            r = uow.repos
            # Row-locked: two creates at once cannot both pass the count.
            user = r.accounts.for_update(user_id)
            if user is None or user["status"] != Status.ACTIVE or user["service_client_id"]:
                raise FailedPrecondition("the account cannot have app passwords")
            if r.app_passwords.count_live(user_id) >= self.per_user:
                raise FailedPrecondition(
                    f"at most {self.per_user} app passwords: revoke one first",
                    type="APP_PASSWORD_LIMIT",
                    subject=user_id,
                )
            ap_id = str(uuid.uuid4())
            r.app_passwords.add(
                id=ap_id,
                user_id=user_id,
                name=name,
                secret_hash=secret_hash,
                created_at=now(),
                last_used_at=None,
                revoked_at=None,
                revoked_reason="",
            )
            event = ev.AppPasswordCreated(
                user_id=user_id, app_password_id=ap_id, name=name, actor_id=actor.id
            )
            self.record(uow, actor, "app_password.create", user_id, event, app_password=ap_id)
            row = next(x for x in r.app_passwords.live(user_id) if x["id"] == ap_id)
            self.commit(uow)
        return proto.app_password(row), secret

    def list_own(self, actor: Actor) -> list[pb.AppPassword]:
        user_id = require_own_account(actor)
        with self.storage.read() as r:
            return [proto.app_password(row) for row in r.app_passwords.live(user_id)]

    def revoke_own(self, actor: Actor, app_password_id: str) -> None:
        """NOT_FOUND unless it is a live app password of the caller's (another official's
        id is answered alike: nobody learns which ids exist)."""
        user_id = require_own_account(actor)
        self._revoke(actor, user_id, _check_id(app_password_id), "revoked")

    # --- administrators ---------------------------------------------------------------------

    def list_for(self, actor: Actor, user_id: str) -> list[pb.AppPassword]:
        with self.storage.read() as r:
            row = r.accounts.require(user_id, REALM)
            require_agency_admin(r, actor, row["agency_code"])
            return [proto.app_password(x) for x in r.app_passwords.live(user_id)]

    def revoke_for(self, actor: Actor, user_id: str, app_password_id: str, reason: str) -> int:
        """One app password of a user (or all, id ""), by an administrator; how many."""
        reason = model.check_name(reason or "admin", "reason", 64)
        ap_id = _check_id(app_password_id) if app_password_id else None
        return self._revoke(actor, user_id, ap_id, reason, admin=True)

    def _revoke(
        self, actor: Actor, user_id: str, ap_id: str | None, reason: str, admin: bool = False
    ) -> int:
        with self.change() as uow:
            r = uow.repos
            if admin:
                row = r.accounts.require(user_id, REALM)
                require_agency_admin(r, actor, row["agency_code"])
            gone = r.app_passwords.revoke(user_id, ap_id, now(), reason)
            if ap_id is not None and not gone:
                raise NotFound(f"app password {ap_id} not found", kind="app_password", name=ap_id)
            _revoked(uow, actor, user_id, REALM, reason, gone)
            self.commit(uow)
        return len(gone)
