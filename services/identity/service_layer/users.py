"""Accounts: create, update, enable/disable, delete (disable and rename), passwords, TOTP,
reading and listing them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf.message import Message

from lgsp.api.identity.v1 import events_pb2 as ev
from lgsp.api.identity.v1 import identity_pb2 as pb
from services.identity.adapters.unit_of_work import Repositories
from services.identity.domain import directory as rules
from services.identity.domain import model, security
from services.identity.domain.access import REALM, Actor, require_platform_admin
from services.identity.domain.errors import AlreadyExists, FailedPrecondition, Invalid, NotFound
from services.identity.domain.model import Status
from services.identity.service_layer import app_passwords, ended
from services.identity.service_layer.common import (
    DirectoryUseCases,
    Row,
    account_message,
    next_page,
    now,
    page,
    require_agency_admin,
)
from services.identity.service_layer.realm_settings import RealmPolicies


class Users(DirectoryUseCases):
    # The realms' settings (password policy) when they can change over REST (bootstrap).
    policies: RealmPolicies | None = None

    def _policy(self, realm: str) -> model.PasswordPolicy:
        return self.policies.current(realm).password if self.policies else model.POLICY

    @staticmethod
    def _administered(r: Repositories, actor: Actor, user_id: str, realm: str | None = None) -> Row:
        """The account, if the actor administers its agency."""
        row = r.accounts.require(user_id, realm)
        require_agency_admin(r, actor, row["agency_code"])
        return row

    def create(
        self,
        actor: Actor,
        u: pb.User,
        *,
        password: str = "",
        temporary: bool = False,
        request_id: str = "",
        realm: str = REALM,
        first_name: str = "",
        last_name: str = "",
        enabled: bool = True,
        service_client_id: str | None = None,
    ) -> tuple[pb.User, str]:
        """Create an account; returns it and the generated one-time password (if any)."""
        username = model.check_username(u.username, "user.username")
        if password:
            model.check_password(
                password, "initial_password", username=username, policy=self._policy(realm)
            )
        first, last = rules.person_names(first_name, last_name)
        rules.check_request_id(request_id)
        if not u.display_name and (first or last):
            u.display_name = f"{last} {first}".strip()  # Vietnamese order: family name first
        fields = list(rules.USER_FIELDS)
        # Officials belong to an agency; only a platform admin may create one without.
        if u.agency_code or (realm == REALM and not actor.is_platform_admin):
            fields.append("agency_code")
        values = rules.user_values(u, fields)
        one_time = ""
        if not password:
            one_time = security.new_secret(12)
            password, temporary = one_time, True
        pw_hash = security.hash_password(password)  # before the transaction: it takes 50 ms
        with self.change() as uow:
            r = uow.repos
            if request_id:
                done = r.requests.result_of(request_id)
                if done:
                    return account_message(r, r.accounts.require(done)), ""
            if values.get("agency_code"):
                agency = r.agencies.require(values["agency_code"])
                if agency["status"] != Status.ACTIVE:
                    raise FailedPrecondition(f"agency {agency['code']} is disabled")
                require_agency_admin(r, actor, values["agency_code"])
            else:
                require_platform_admin(actor)
            if r.accounts.find(realm, username) is not None:
                raise AlreadyExists(f"username {username} is taken", kind="user", name=username)
            ts = now()
            user_id = str(uuid.uuid4())
            values.setdefault("agency_code", None)
            r.accounts.add(
                id=user_id,
                realm=realm,
                username=username,
                first_name=first,
                last_name=last,
                status=Status.ACTIVE if enabled else Status.DISABLED,
                password_hash=pw_hash,
                password_temporary=temporary,
                failed_logins=0,
                service_client_id=service_client_id,
                search_text=rules.user_search_text(
                    username, values["display_name"], values["email"]
                ),
                created_at=ts,
                updated_at=ts,
                version=1,
                **values,
            )
            if request_id:
                r.requests.record(request_id, "user", user_id)
            msg = account_message(r, r.accounts.require(user_id))
            event = ev.UserCreated(user=msg, actor_id=actor.id) if realm == REALM else None
            self.record(uow, actor, "user.create", user_id, event, username=username)
            self.commit(uow)
        return msg, one_time

    def create_with_hash(
        self, actor: Actor, o: Mapping[str, Any], pw_hash: str, roles: Mapping[str, bool]
    ) -> str:
        """Bulk loading (the demo province): an official of realm lgsp with a password hash
        computed once for many, and its roles in its agency (role → include sub-agencies).
        Trusted input: no checks, one UserCreated event."""
        with self.change() as uow:
            r = uow.repos
            uid, ts = str(uuid.uuid4()), now()
            r.accounts.add(
                id=uid,
                realm=REALM,
                username=o["username"],
                display_name=o["display_name"],
                first_name="",
                last_name="",
                email=o["email"],
                phone="",
                agency_code=o["agency_code"],
                position=o["position"],
                status=Status.ACTIVE,
                password_hash=pw_hash,
                password_temporary=False,
                failed_logins=0,
                search_text=rules.user_search_text(o["username"], o["display_name"], o["email"]),
                created_at=ts,
                updated_at=ts,
                version=1,
            )
            for role, include_sub in roles.items():
                r.grants.add(
                    user_id=uid,
                    role=role,
                    agency_code=o["agency_code"],
                    include_sub=include_sub,
                    granted_at=ts,
                    granted_by="",
                )
            msg = account_message(r, r.accounts.require(uid))
            event = ev.UserCreated(user=msg)
            self.record(uow, actor, "user.create", uid, event, username=o["username"])
            self.commit(uow)
        return uid

    def update(
        self, actor: Actor, u: pb.User, mask: Sequence[str], *, extra: Mapping[str, Any] = {}
    ) -> pb.User:
        if not extra:
            rules.require_mask(mask)
        values = rules.user_values(u, mask)
        values.update(extra)
        with self.change() as uow:
            r = uow.repos
            row = self._administered(r, actor, u.id)
            rules.check_etag(row, u.etag, f"user {row['username']}")
            if values.get("agency_code"):
                r.agencies.require(values["agency_code"])
                require_agency_admin(r, actor, values["agency_code"])
            changed = [k for k, v in values.items() if row[k] != v]
            if changed:
                merged = {**row, **values}
                r.accounts.update(
                    u.id,
                    updated_at=now(),
                    version=row["version"] + 1,
                    search_text=rules.user_search_text(
                        merged["username"], merged["display_name"], merged["email"]
                    ),
                    **values,
                )
            msg = account_message(r, r.accounts.require(u.id))
            if changed:
                event = ev.UserUpdated(user=msg, changed_fields=changed, actor_id=actor.id)
                self.record(
                    uow,
                    actor,
                    "user.update",
                    u.id,
                    event if row["realm"] == REALM else None,
                    fields=changed,
                )
            self.commit(uow)
        return msg

    def set_status(
        self, actor: Actor, user_id: str, etag: str, enabled: bool, reason: str = ""
    ) -> pb.User:
        reason = rules.reason(reason)
        with self.change() as uow:
            r = uow.repos
            row = self._administered(r, actor, user_id)
            rules.check_etag(row, etag, f"user {row['username']}")
            r.accounts.update(
                user_id,
                status=Status.ACTIVE if enabled else Status.DISABLED,
                failed_logins=0,
                locked_until=None,
                updated_at=now(),
                version=row["version"] + 1,
            )
            event: Message
            if enabled:
                event = ev.UserEnabled(user_id=user_id, username=row["username"], actor_id=actor.id)
            else:
                ts = now()
                gone = r.sessions.revoke_open(ts, "user disabled", user_id=user_id)
                ended.account_ended(uow, gone, user_id, row["realm"], ts)
                app_passwords.revoke_all(uow, actor, user_id, row["realm"], "user disabled")
                event = ev.UserDisabled(
                    user_id=user_id,
                    username=row["username"],
                    agency_code=row["agency_code"] or "",
                    reason=reason,
                    actor_id=actor.id,
                )
            self.record(
                uow,
                actor,
                "user.enable" if enabled else "user.disable",
                user_id,
                event if row["realm"] == REALM else None,
                reason=reason,
            )
            msg = account_message(r, r.accounts.require(user_id))
            self.commit(uow)
        return msg

    def delete(self, actor: Actor, user_id: str, realm: str) -> None:
        """Keycloak's DELETE user: here the account is disabled and renamed away, so audit
        records and documents that name it stay resolvable."""
        with self.change() as uow:
            r = uow.repos
            row = self._administered(r, actor, user_id, realm)
            r.accounts.update(
                user_id,
                status=Status.DISABLED,
                username=f"deleted.{user_id}",
                realm=f"deleted:{realm}",
                updated_at=now(),
                version=row["version"] + 1,
            )
            r.groups.leave_all(user_id)
            ts = now()
            gone = r.sessions.revoke_open(ts, "user deleted", user_id=user_id)
            ended.account_ended(uow, gone, user_id, row["realm"], ts)
            app_passwords.revoke_all(uow, actor, user_id, row["realm"], "user deleted")
            event = ev.UserDisabled(
                user_id=user_id,
                username=row["username"],
                agency_code=row["agency_code"] or "",
                reason="deleted",
                actor_id=actor.id,
            )
            self.record(uow, actor, "user.delete", user_id, event if realm == REALM else None)
            self.commit(uow)

    def reset_password(
        self,
        actor: Actor,
        user_id: str,
        password: str = "",
        temporary: bool = True,
        realm: str | None = None,
    ) -> str:
        """Set a password (or generate a one-time one, returned); unlocks the account."""
        row = self.row(user_id, realm)
        one_time = ""
        if password:
            model.check_password(
                password, "password", username=row["username"], policy=self._policy(row["realm"])
            )
        else:
            one_time = password = security.new_secret(12)
            temporary = True
        pw_hash = security.hash_password(password)
        with self.change() as uow:
            r = uow.repos
            row = self._administered(r, actor, user_id, realm)
            r.accounts.update(
                user_id,
                password_hash=pw_hash,
                password_temporary=temporary,
                failed_logins=0,
                locked_until=None,
                status=Status.ACTIVE if row["status"] == Status.LOCKED else row["status"],
                updated_at=now(),
                version=row["version"] + 1,
            )
            # Whoever held the old password (or its sessions, or an app password made with
            # it) is out.
            ts = now()
            gone = r.sessions.revoke_open(ts, "password reset", user_id=user_id)
            ended.account_ended(uow, gone, user_id, row["realm"], ts)
            app_passwords.revoke_all(uow, actor, user_id, row["realm"], "password reset")
            event = ev.PasswordReset(user_id=user_id, actor_id=actor.id)
            self.record(
                uow,
                actor,
                "user.reset_password",
                user_id,
                event if row["realm"] == REALM else None,
            )
            self.commit(uow)
        return one_time

    def change_temporary_password(self, user_id: str, password: str) -> Row:
        """The official replaces a temporary password at sign-in (the UPDATE_PASSWORD
        required action, on the login page once the temporary one was found right). Returns
        the account as it is now."""
        row = self.row(user_id)
        if not row["password_temporary"]:
            raise FailedPrecondition("the password is not temporary")
        model.check_password(
            password, "password", username=row["username"], policy=self._policy(row["realm"])
        )
        pw_hash = security.hash_password(password)
        actor = Actor(id=user_id, realm=row["realm"], name=row["username"])
        with self.change() as uow:
            r = uow.repos
            r.accounts.update(
                user_id,
                password_hash=pw_hash,
                password_temporary=False,
                updated_at=now(),
                version=row["version"] + 1,
            )
            event = ev.PasswordReset(user_id=user_id, actor_id=user_id)
            self.record(
                uow,
                actor,
                "user.change_password",
                user_id,
                event if row["realm"] == REALM else None,
            )
            out = r.accounts.require(user_id)
            self.commit(uow)
        return out

    def configure_totp(self, user_id: str, secret: str) -> Row:
        """The official set up the second factor at sign-in (the CONFIGURE_TOTP required
        action; the caller checked a code from it). Returns the account as it is now."""
        row = self.row(user_id)
        if "CONFIGURE_TOTP" not in (row["required_actions"] or "").split():
            raise FailedPrecondition("CONFIGURE_TOTP is not pending")
        actor = Actor(id=user_id, realm=row["realm"], name=row["username"])
        rest = [a for a in row["required_actions"].split() if a != "CONFIGURE_TOTP"]
        with self.change() as uow:
            r = uow.repos
            r.accounts.update(
                user_id,
                totp_secret=secret,
                required_actions=" ".join(rest),
                updated_at=now(),
                version=row["version"] + 1,
            )
            self.record(uow, actor, "user.totp_enable", user_id, None, by="required action")
            out = r.accounts.require(user_id)
            self.commit(uow)
        return out

    def verify_profile(self, user_id: str, last_name: str, first_name: str, email: str) -> Row:
        """The official confirms (or corrects) name and email at sign-in (the VERIFY_PROFILE
        required action, on the login page once the password was found right). Keycloak's
        default user profile asks for all three. Returns the account as it is now."""
        first, last = rules.person_names(first_name, last_name)
        if not first:
            raise Invalid("firstName", "is required")
        mail = model.check_email(email, "email", required=True)
        row = self.row(user_id)
        if "VERIFY_PROFILE" not in (row["required_actions"] or "").split():
            raise FailedPrecondition("VERIFY_PROFILE is not pending")
        actor = Actor(id=user_id, realm=row["realm"], name=row["username"])
        rest = [a for a in row["required_actions"].split() if a != "VERIFY_PROFILE"]
        values = {
            "first_name": first,
            "last_name": last,
            "display_name": f"{last} {first}".strip(),  # Vietnamese order: family name first
            "email": mail,
        }
        changed = [k for k, v in values.items() if row[k] != v]
        with self.change() as uow:
            r = uow.repos
            r.accounts.update(
                user_id,
                required_actions=" ".join(rest),
                search_text=rules.user_search_text(row["username"], values["display_name"], mail),
                updated_at=now(),
                version=row["version"] + 1,
                **values,
            )
            msg = account_message(r, r.accounts.require(user_id))
            event = ev.UserUpdated(user=msg, changed_fields=changed, actor_id=user_id)
            self.record(
                uow,
                actor,
                "user.verify_profile",
                user_id,
                event if row["realm"] == REALM and changed else None,
                fields=changed,
            )
            out = r.accounts.require(user_id)
            self.commit(uow)
        return out

    def end_sessions(self, actor: Actor, user_id: str, realm: str | None = None) -> list[Row]:
        """An administrator signs an account out everywhere (its SSO sessions too); the
        client sessions that ended (for their back-channel logout)."""
        with self.change() as uow:
            r = uow.repos
            self._administered(r, actor, user_id, realm)
            ts = now()
            gone = r.sessions.revoke_open(ts, "admin", user_id=user_id)
            ended.sessions_ended(uow, gone, ended.ADMIN, ts)
            self.record(uow, actor, "user.logout", user_id, None, sessions=len(gone))
            self.commit(uow)
        return gone

    def set_required_actions(
        self, actor: Actor, user_id: str, actions: Any, realm: str | None = None
    ) -> None:
        """Keycloak's requiredActions on a user: stored, and enforced at every sign-in."""
        wanted = rules.check_required_actions(actions)
        with self.change() as uow:
            r = uow.repos
            row = self._administered(r, actor, user_id, realm)
            if rules.required_actions(row) == wanted:
                return
            r.accounts.update(
                user_id,
                password_temporary="UPDATE_PASSWORD" in wanted,
                required_actions=" ".join(a for a in wanted if a != "UPDATE_PASSWORD"),
                updated_at=now(),
                version=row["version"] + 1,
            )
            self.record(uow, actor, "user.update", user_id, None, required_actions=wanted)
            self.commit(uow)

    def set_totp(self, actor: Actor, user_id: str, enable: bool) -> str:
        """Turn the TOTP second factor on (returns the new base32 secret) or off."""
        secret = security.new_totp_secret() if enable else None
        with self.change() as uow:
            r = uow.repos
            row = self._administered(r, actor, user_id)
            r.accounts.update(
                user_id, totp_secret=secret, updated_at=now(), version=row["version"] + 1
            )
            action = "user.totp_enable" if enable else "user.totp_disable"
            self.record(uow, actor, action, user_id, None)
            self.commit(uow)
        return secret or ""

    # --- reading --------------------------------------------------------------------------

    def row(self, user_id: str, realm: str | None = None) -> Row:
        with self.storage.read() as r:
            return r.accounts.require(user_id, realm)

    def find(self, realm: str, username: str) -> Row | None:
        with self.storage.read() as r:
            return r.accounts.find(realm, username)

    def id_of(self, realm: str, username: str) -> str:
        row = self.find(realm, username)
        if row is None:
            raise NotFound(f"user {username} not found in realm {realm}")
        return str(row["id"])

    def get(self, *, user_id: str = "", username: str = "", realm: str = REALM) -> pb.User:
        with self.storage.read() as r:
            if user_id:
                return account_message(r, r.accounts.require(user_id, realm))
            row = r.accounts.find(realm, username)
            if row is None:
                raise NotFound(f"user {username} not found", kind="user", name=username)
            return account_message(r, row)

    def people(self, realm: str, **query: Any) -> list[Row]:
        """Keycloak's user query (accounts of people, not service accounts)."""
        with self.storage.read() as r:
            return r.accounts.people(realm, **query)

    def count_people(self, realm: str, **query: Any) -> int:
        with self.storage.read() as r:
            return r.accounts.count_people(realm, **query)

    def list(self, req: pb.ListUsersRequest, realm: str = REALM) -> pb.ListUsersResponse:
        offset, size = page(req.page_size, req.page_token, 50, 500)
        if len(req.query) > 200:
            raise Invalid("query", "at most 200 characters")
        with self.storage.read() as r:
            codes: list[str] = []
            if req.agency_code:
                codes = [req.agency_code]
                if req.include_sub_agencies:
                    codes = r.agencies.subtree(req.agency_code)
            total, rows = r.accounts.select(
                realm,
                agency_codes=codes,
                role=model.ROLE_NAMES.get(int(req.role), "") if req.role else None,
                status=int(req.status),
                group_id=req.group_id,
                search=rules.fold(req.query) if req.query else "",
                offset=offset,
                limit=size,
            )
            users = [account_message(r, row) for row in rows]
        return pb.ListUsersResponse(
            users=users,
            next_page_token=next_page(offset, size, offset + size < total),
            total_size=total,
        )
