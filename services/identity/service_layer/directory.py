"""The directory: agencies, accounts, roles, groups and client systems.

Every change runs in one UnitOfWork that writes the rows, an audit row and the event
(lgsp.identity.v1) together; validation and permission checks come first, so a refused request
changes nothing. Methods are synchronous (SQLAlchemy sync sessions); async callers run them in
a worker thread.
"""

from __future__ import annotations

import base64
import json
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from lgsp.api.identity.v1 import events_pb2 as ev
from lgsp.api.identity.v1 import identity_pb2 as pb
from lgsp.db import UnitOfWork, for_writing
from lgsp.grpc.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from services.identity.adapters import proto
from services.identity.adapters import tables as t
from services.identity.domain import model, security
from services.identity.domain.model import Invalid, Status

Row = Any  # a SQLAlchemy RowMapping (or any str-keyed mapping)
REALM = "lgsp"
MASTER = "master"
SOURCE = "identity"
_AUDIT_INSERT = sa.insert(t.audit_log)


@dataclass(frozen=True)
class Actor:
    """Who asks for a change: an authenticated admin, a client system, or the system itself."""

    id: str  # user id, "client:<client_id>", or "" for the system (CLI, seeding)
    roles: frozenset[str] = frozenset()
    realm: str = REALM
    remote_ip: str = ""
    name: str = ""

    @property
    def is_system(self) -> bool:
        return self.id == ""

    @property
    def is_platform_admin(self) -> bool:
        return self.is_system or "admin" in self.roles


SYSTEM = Actor(id="", name="system")


def now() -> float:
    return time.time()


def fold(text: str) -> str:
    """Lowercase without Vietnamese diacritics (đ → d), for accent-insensitive search."""
    decomposed = unicodedata.normalize("NFD", text.lower().replace("đ", "d"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def encode_page(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_page(token: str) -> int:
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        offset = json.loads(base64.urlsafe_b64decode(padded))["o"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError
        return offset
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument("page_token", "is not a token returned by this service") from None


def page_size(requested: int, default: int, maximum: int) -> int:
    if requested < 0:
        raise InvalidArgument("page_size", "must not be negative")
    return min(requested or default, maximum)


def check_etag(row: Row, given: str, what: str) -> None:
    if given and given != proto.etag(row["version"]):
        raise Aborted(f"{what} was changed by someone else (etag {given} is stale); re-read it")


def invalid(exc: Invalid) -> InvalidArgument:
    return InvalidArgument(exc.field, exc.description)


class _DirectoryUnitOfWork(UnitOfWork):
    """A unit of work whose losing side of a race gets the answer the checks give in turn:
    a unique key taken meanwhile → ALREADY_EXISTS, a row changed meanwhile → ABORTED.
    (The checks before each insert and update see committed data only; on PostgreSQL a
    concurrent request can commit between the check and the write.)"""

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        super().__exit__(exc_type, exc, tb)
        if isinstance(exc, sa.exc.IntegrityError) and _sqlstate(exc) in {"23505", None}:
            if _sqlstate(exc) == "23505" or "UNIQUE" in str(exc.orig):
                raise AlreadyExists("it was created by a concurrent request") from None
        if isinstance(exc, sa.exc.OperationalError) and _sqlstate(exc) in {"40001", "40P01"}:
            raise Aborted("changed by a concurrent request; read it again and retry") from None


def _sqlstate(exc: sa.exc.DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


@dataclass
class Directory:
    engine: Engine
    after_commit: Callable[[], None] = lambda: None
    lockout: security.LockoutPolicy = field(default_factory=security.LockoutPolicy)
    # Bumped by every committed directory change: the token service's caches of clients and
    # accounts compare it, so a change made here takes effect on the very next token request.
    generation: int = 0
    # One sessionmaker for every unit of work: UnitOfWork would otherwise build a new one (a
    # new Session subclass with its event dispatch) per call, ~0.1 ms each on the token path.
    sessions: Callable[[], Session] = field(init=False, repr=False)

    # Directory changes on PostgreSQL run at REPEATABLE READ: two admins changing one row at
    # once (both past the etag check) make the second fail (→ ABORTED) instead of silently
    # overwriting the first. SQLite takes its write lock at BEGIN, which serializes them.
    directory_sessions: Callable[[], Session] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        writer = for_writing(self.engine)
        self.sessions = sessionmaker(bind=writer, expire_on_commit=False)
        if self.engine.dialect.name == "postgresql":
            writer = writer.execution_options(isolation_level="REPEATABLE READ")
        self.directory_sessions = sessionmaker(bind=writer, expire_on_commit=False)

    # --- plumbing -------------------------------------------------------------------------

    def _uow(self) -> UnitOfWork:
        return _DirectoryUnitOfWork(
            self.engine, source=SOURCE, session_factory=self.directory_sessions
        )

    def _commit(self, uow: UnitOfWork) -> None:
        uow.commit()
        self.generation += 1
        self.after_commit()

    def read(self) -> Session:
        return Session(self.engine)

    @staticmethod
    def audit(
        s: Session,
        actor: Actor,
        action: str,
        subject: str,
        outcome: str = "ok",
        **details: Any,
    ) -> None:
        s.execute(
            _AUDIT_INSERT,  # parameters apart from the statement: its compiled form is cached
            {
                "at": now(),
                "actor": actor.id or "system",
                "action": action,
                "subject": subject,
                "outcome": outcome,
                "remote_ip": actor.remote_ip,
                "details": details,
            },
        )

    def _change(
        self,
        uow: UnitOfWork,
        actor: Actor,
        action: str,
        subject: str,
        event: Message | None,
        **details: Any,
    ) -> None:
        self.audit(uow.session, actor, action, subject, **details)
        if event is not None:
            uow.emit(event, subject=subject)

    # --- permissions ----------------------------------------------------------------------

    def ancestors(self, s: Session, code: str) -> list[str]:
        """code, its parent, … up to the root (cycle-safe)."""
        chain: list[str] = []
        current: str | None = code
        while current and current not in chain and len(chain) < 64:
            chain.append(current)
            current = s.execute(
                sa.select(t.agencies.c.parent_code).where(t.agencies.c.code == current)
            ).scalar()
        return chain

    def require_platform_admin(self, actor: Actor) -> None:
        if not actor.is_platform_admin:
            raise PermissionDenied("this needs the admin role")

    def require_agency_admin(self, s: Session, actor: Actor, agency_code: str | None) -> None:
        """Platform admins, or agency admins of agency_code (or of an ancestor, sub-agencies)."""
        if actor.is_platform_admin:
            return
        if agency_code and actor.id and "agency_admin" in actor.roles:
            chain = self.ancestors(s, agency_code)
            rows = s.execute(
                sa.select(t.role_grants.c.agency_code, t.role_grants.c.include_sub).where(
                    t.role_grants.c.user_id == actor.id,
                    t.role_grants.c.role == "agency_admin",
                    t.role_grants.c.agency_code.in_(chain),
                )
            ).all()
            if any(r.agency_code == agency_code or r.include_sub for r in rows):
                return
        raise PermissionDenied(
            f"this needs the admin role, or agency_admin over {agency_code or 'the agency'}"
        )

    # --- agencies -------------------------------------------------------------------------

    def get_agency_row(self, s: Session, code: str) -> Row:
        row = s.execute(sa.select(t.agencies).where(t.agencies.c.code == code)).mappings().first()
        if row is None:
            raise NotFound(f"agency {code} not found", resource_type="agency", resource_name=code)
        return row

    def _agency_fields(self, a: pb.Agency, fields: Iterable[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        try:
            for f in fields:
                if f == "name":
                    out["name"] = model.check_name(a.name, "agency.name", max_len=300)
                elif f == "short_name":
                    out["short_name"] = model.check_name(
                        a.short_name, "agency.short_name", max_len=50, required=False
                    )
                elif f == "level":
                    if a.level not in model.AgencyLevel._value2member_map_:
                        raise Invalid("agency.level", "is required (province, department, …)")
                    out["level"] = int(a.level)
                elif f == "parent_code":
                    out["parent_code"] = (
                        model.check_agency_code(a.parent_code, "agency.parent_code")
                        if a.parent_code
                        else None
                    )
                elif f == "mail_domain":
                    dom = a.mail_domain.strip().lower()
                    if dom and not model._EMAIL.match(f"x@{dom}"):
                        raise Invalid("agency.mail_domain", "must be a domain like stp.gov.vn")
                    out["mail_domain"] = dom
                elif f in ("address", "place_name"):
                    out[f] = model.check_name(
                        getattr(a, f), f"agency.{f}", max_len=300, required=False
                    )
                elif f == "phone":
                    out["phone"] = model.check_name(
                        a.phone, "agency.phone", max_len=32, required=False
                    )
                elif f == "email":
                    out["email"] = model.check_email(a.email, "agency.email")
                else:
                    raise Invalid("update_mask", f"field {f!r} cannot be changed")
        except Invalid as exc:
            raise invalid(exc) from None
        return out

    def create_agency(self, actor: Actor, a: pb.Agency) -> pb.Agency:
        self.require_platform_admin(actor)
        try:
            code = model.check_agency_code(a.code, "agency.code")
        except Invalid as exc:
            raise invalid(exc) from None
        values = self._agency_fields(
            a,
            [
                "name",
                "short_name",
                "level",
                "parent_code",
                "mail_domain",
                "address",
                "phone",
                "email",
                "place_name",
            ],
        )
        with self._uow() as uow:
            s = uow.session
            if s.execute(sa.select(t.agencies.c.code).where(t.agencies.c.code == code)).first():
                raise AlreadyExists(
                    f"agency {code} already exists", resource_type="agency", resource_name=code
                )
            if values["parent_code"]:
                self.get_agency_row(s, values["parent_code"])
            ts = now()
            s.execute(
                sa.insert(t.agencies).values(
                    code=code,
                    status=Status.ACTIVE,
                    successor_code="",
                    created_at=ts,
                    updated_at=ts,
                    version=1,
                    **values,
                )
            )
            msg = proto.agency(self.get_agency_row(s, code))
            self._change(
                uow, actor, "agency.create", code, ev.AgencyCreated(agency=msg, actor_id=actor.id)
            )
            self._commit(uow)
        return msg

    def update_agency(self, actor: Actor, a: pb.Agency, mask: Sequence[str]) -> pb.Agency:
        if not mask:
            raise InvalidArgument("update_mask", "name at least one field to change")
        if "code" in mask or "status" in mask:
            raise InvalidArgument("update_mask", "code and status cannot be changed here")
        values = self._agency_fields(a, mask)
        with self._uow() as uow:
            s = uow.session
            row = self.get_agency_row(s, a.code)
            self.require_agency_admin(s, actor, a.code)
            check_etag(row, a.etag, f"agency {a.code}")
            if values.get("parent_code"):
                self.get_agency_row(s, values["parent_code"])
                if a.code in self.ancestors(s, values["parent_code"]):
                    raise InvalidArgument("agency.parent_code", "would make a cycle in the tree")
            changed = [k for k, v in values.items() if row[k] != v]
            if changed:
                s.execute(
                    sa.update(t.agencies)
                    .where(t.agencies.c.code == a.code)
                    .values(updated_at=now(), version=row["version"] + 1, **values)
                )
            msg = proto.agency(self.get_agency_row(s, a.code))
            if changed:
                self._change(
                    uow,
                    actor,
                    "agency.update",
                    a.code,
                    ev.AgencyUpdated(agency=msg, changed_fields=changed, actor_id=actor.id),
                    fields=changed,
                )
            self._commit(uow)
        return msg

    def disable_agency(
        self, actor: Actor, code: str, etag: str, successor: str, reason: str
    ) -> pb.Agency:
        self.require_platform_admin(actor)
        try:
            reason = model.check_name(reason, "reason", max_len=500, required=False)
        except Invalid as exc:
            raise invalid(exc) from None
        with self._uow() as uow:
            s = uow.session
            row = self.get_agency_row(s, code)
            check_etag(row, etag, f"agency {code}")
            if successor:
                self.get_agency_row(s, successor)
            active_children = s.execute(
                sa.select(sa.func.count())
                .select_from(t.agencies)
                .where(t.agencies.c.parent_code == code, t.agencies.c.status == Status.ACTIVE)
            ).scalar_one()
            if active_children:
                raise FailedPrecondition(
                    f"agency {code} still has {active_children} active agencies below it",
                    type="ACTIVE_SUB_AGENCIES",
                    subject=code,
                )
            s.execute(
                sa.update(t.agencies)
                .where(t.agencies.c.code == code)
                .values(
                    status=Status.DISABLED,
                    successor_code=successor,
                    updated_at=now(),
                    version=row["version"] + 1,
                )
            )
            msg = proto.agency(self.get_agency_row(s, code))
            self._change(
                uow,
                actor,
                "agency.disable",
                code,
                ev.AgencyDisabled(
                    code=code, successor_code=successor, reason=reason, actor_id=actor.id
                ),
            )
            self._commit(uow)
        return msg

    def get_agency(self, code: str) -> pb.Agency:
        with self.read() as s:
            return proto.agency(self.get_agency_row(s, code))

    def list_agencies(self, req: pb.ListAgenciesRequest) -> pb.ListAgenciesResponse:
        size = page_size(req.page_size, 100, 1000)
        offset = decode_page(req.page_token)
        q = sa.select(t.agencies)
        if req.parent_code:
            q = q.where(t.agencies.c.parent_code == req.parent_code)
        if req.level:
            q = q.where(t.agencies.c.level == int(req.level))
        if not req.include_disabled:
            q = q.where(t.agencies.c.status == Status.ACTIVE)
        with self.read() as s:
            rows = s.execute(q.order_by(t.agencies.c.code)).mappings().all()
        if req.query:
            needle = fold(req.query)
            rows = [
                r
                for r in rows
                if needle in fold(f"{r['name']} {r['short_name']} {r['code']}".lower())
            ]
        page = rows[offset : offset + size]
        nxt = encode_page(offset + size) if offset + size < len(rows) else ""
        return pb.ListAgenciesResponse(
            agencies=[proto.agency(r) for r in page], next_page_token=nxt, total_size=len(rows)
        )

    def agency_tree(self, root: str, max_depth: int, include_disabled: bool) -> list[pb.AgencyNode]:
        if max_depth < 0:
            raise InvalidArgument("max_depth", "must not be negative")
        with self.read() as s:
            q = sa.select(t.agencies).order_by(t.agencies.c.code)
            rows = s.execute(q).mappings().all()
            if root:
                self.get_agency_row(s, root)
        children: dict[str | None, list[Row]] = {}
        for r in rows:
            if include_disabled or r["status"] == Status.ACTIVE:
                children.setdefault(r["parent_code"] or None, []).append(r)

        def node(r: Row, depth: int) -> pb.AgencyNode:
            kids = [] if max_depth and depth >= max_depth else children.get(r["code"], [])
            return pb.AgencyNode(
                agency=proto.agency(r), children=[node(k, depth + 1) for k in kids]
            )

        if root:
            start = [r for r in rows if r["code"] == root]
        else:
            start = children.get(None, [])
        return [node(r, 0) for r in start]

    # --- users ----------------------------------------------------------------------------

    def get_user_row(self, s: Session, user_id: str, realm: str | None = None) -> Row:
        q = sa.select(t.users).where(t.users.c.id == user_id)
        if realm:
            q = q.where(t.users.c.realm == realm)
        row = s.execute(q).mappings().first()
        if row is None:
            raise NotFound(f"user {user_id} not found", resource_type="user", resource_name=user_id)
        return row

    def find_user(self, s: Session, realm: str, username: str) -> Row | None:
        return (
            s.execute(
                sa.select(t.users).where(
                    t.users.c.realm == realm, t.users.c.username == username.strip().lower()
                )
            )
            .mappings()
            .first()
        )

    def grants_of(self, s: Session, user_id: str) -> list[Row]:
        return list(
            s.execute(
                sa.select(t.role_grants)
                .where(t.role_grants.c.user_id == user_id)
                .order_by(t.role_grants.c.agency_code, t.role_grants.c.role)
            )
            .mappings()
            .all()
        )

    def groups_of(self, s: Session, user_id: str) -> list[str]:
        return list(
            s.execute(
                sa.select(t.group_members.c.group_id).where(t.group_members.c.user_id == user_id)
            )
            .scalars()
            .all()
        )

    def user_msg(self, s: Session, row: Row) -> pb.User:
        return proto.user(row, self.grants_of(s, row["id"]), self.groups_of(s, row["id"]), now())

    def _user_fields(self, u: pb.User, fields: Iterable[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        try:
            for f in fields:
                if f == "display_name":
                    out[f] = model.check_name(u.display_name, "user.display_name")
                elif f == "email":
                    out[f] = model.check_email(u.email, "user.email")
                elif f == "phone":
                    out[f] = model.check_phone(u.phone, "user.phone")
                elif f == "position":
                    out[f] = model.check_name(u.position, "user.position", required=False)
                elif f == "agency_code":
                    out[f] = model.check_agency_code(u.agency_code, "user.agency_code")
                else:
                    raise Invalid("update_mask", f"field {f!r} cannot be changed here")
        except Invalid as exc:
            raise invalid(exc) from None
        return out

    def create_user(
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
        try:
            username = model.check_username(u.username, "user.username")
            if password:
                model.check_password(password, "initial_password", username=username)
            first = model.check_name(first_name, "firstName", max_len=100, required=False)
            last = model.check_name(last_name, "lastName", max_len=100, required=False)
            if request_id:
                uuid.UUID(request_id)
        except Invalid as exc:
            raise invalid(exc) from None
        except ValueError:
            raise InvalidArgument("request_id", "must be a UUID") from None
        if not u.display_name and (first or last):
            u.display_name = f"{last} {first}".strip()  # Vietnamese order: family name first
        fields = ["display_name", "email", "phone", "position"]
        # Officials belong to an agency; only a platform admin may create one without.
        if u.agency_code or (realm == REALM and not actor.is_platform_admin):
            fields.append("agency_code")
        values = self._user_fields(u, fields)
        one_time = ""
        if not password:
            one_time = security.new_secret(12)
            password, temporary = one_time, True
        pw_hash = security.hash_password(password)  # before the transaction: it takes 50 ms
        with self._uow() as uow:
            s = uow.session
            if request_id:
                done = s.execute(
                    sa.select(t.idempotency.c.result_id).where(
                        t.idempotency.c.request_id == request_id
                    )
                ).scalar()
                if done:
                    return self.user_msg(s, self.get_user_row(s, done)), ""
            if values.get("agency_code"):
                agency = self.get_agency_row(s, values["agency_code"])
                if agency["status"] != Status.ACTIVE:
                    raise FailedPrecondition(f"agency {agency['code']} is disabled")
                self.require_agency_admin(s, actor, values["agency_code"])
            else:
                self.require_platform_admin(actor)
            if self.find_user(s, realm, username) is not None:
                raise AlreadyExists(
                    f"username {username} is taken", resource_type="user", resource_name=username
                )
            ts = now()
            user_id = str(uuid.uuid4())
            values.setdefault("agency_code", None)
            s.execute(
                sa.insert(t.users).values(
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
                    search_text=fold(f"{username} {values['display_name']} {values['email']}"),
                    created_at=ts,
                    updated_at=ts,
                    version=1,
                    **values,
                )
            )
            if request_id:
                s.execute(
                    sa.insert(t.idempotency).values(
                        request_id=request_id, kind="user", result_id=user_id
                    )
                )
            msg = self.user_msg(s, self.get_user_row(s, user_id))
            self._change(
                uow,
                actor,
                "user.create",
                user_id,
                ev.UserCreated(user=msg, actor_id=actor.id) if realm == REALM else None,
                username=username,
            )
            self._commit(uow)
        return msg, one_time

    def update_user(
        self, actor: Actor, u: pb.User, mask: Sequence[str], *, extra: Mapping[str, Any] = {}
    ) -> pb.User:
        if not mask and not extra:
            raise InvalidArgument("update_mask", "name at least one field to change")
        values = self._user_fields(u, mask)
        values.update(extra)
        with self._uow() as uow:
            s = uow.session
            row = self.get_user_row(s, u.id)
            self.require_agency_admin(s, actor, row["agency_code"])
            check_etag(row, u.etag, f"user {row['username']}")
            if values.get("agency_code"):
                self.get_agency_row(s, values["agency_code"])
                self.require_agency_admin(s, actor, values["agency_code"])
            changed = [k for k, v in values.items() if row[k] != v]
            if changed:
                merged = {**row, **values}
                s.execute(
                    sa.update(t.users)
                    .where(t.users.c.id == u.id)
                    .values(
                        updated_at=now(),
                        version=row["version"] + 1,
                        search_text=fold(
                            f"{merged['username']} {merged['display_name']} {merged['email']}"
                        ),
                        **values,
                    )
                )
            msg = self.user_msg(s, self.get_user_row(s, u.id))
            if changed:
                self._change(
                    uow,
                    actor,
                    "user.update",
                    u.id,
                    ev.UserUpdated(user=msg, changed_fields=changed, actor_id=actor.id)
                    if row["realm"] == REALM
                    else None,
                    fields=changed,
                )
            self._commit(uow)
        return msg

    def set_user_status(
        self, actor: Actor, user_id: str, etag: str, enabled: bool, reason: str = ""
    ) -> pb.User:
        try:
            reason = model.check_name(reason, "reason", max_len=500, required=False)
        except Invalid as exc:
            raise invalid(exc) from None
        with self._uow() as uow:
            s = uow.session
            row = self.get_user_row(s, user_id)
            self.require_agency_admin(s, actor, row["agency_code"])
            check_etag(row, etag, f"user {row['username']}")
            status = Status.ACTIVE if enabled else Status.DISABLED
            s.execute(
                sa.update(t.users)
                .where(t.users.c.id == user_id)
                .values(
                    status=status,
                    failed_logins=0,
                    locked_until=None,
                    updated_at=now(),
                    version=row["version"] + 1,
                )
            )
            if not enabled:
                self._revoke_sessions(s, user_id, "user disabled")
            event: Message
            if enabled:
                event = ev.UserEnabled(user_id=user_id, username=row["username"], actor_id=actor.id)
            else:
                event = ev.UserDisabled(
                    user_id=user_id,
                    username=row["username"],
                    agency_code=row["agency_code"] or "",
                    reason=reason,
                    actor_id=actor.id,
                )
            self._change(
                uow,
                actor,
                "user.enable" if enabled else "user.disable",
                user_id,
                event if row["realm"] == REALM else None,
                reason=reason,
            )
            msg = self.user_msg(s, self.get_user_row(s, user_id))
            self._commit(uow)
        return msg

    def delete_user(self, actor: Actor, user_id: str, realm: str) -> None:
        """Keycloak's DELETE user: here the account is disabled and renamed away, so audit
        records and documents that name it stay resolvable."""
        with self._uow() as uow:
            s = uow.session
            row = self.get_user_row(s, user_id, realm)
            self.require_agency_admin(s, actor, row["agency_code"])
            s.execute(
                sa.update(t.users)
                .where(t.users.c.id == user_id)
                .values(
                    status=Status.DISABLED,
                    username=f"deleted.{user_id}",
                    realm=f"deleted:{realm}",
                    updated_at=now(),
                    version=row["version"] + 1,
                )
            )
            s.execute(sa.delete(t.group_members).where(t.group_members.c.user_id == user_id))
            self._revoke_sessions(s, user_id, "user deleted")
            self._change(
                uow,
                actor,
                "user.delete",
                user_id,
                ev.UserDisabled(
                    user_id=user_id,
                    username=row["username"],
                    agency_code=row["agency_code"] or "",
                    reason="deleted",
                    actor_id=actor.id,
                )
                if realm == REALM
                else None,
            )
            self._commit(uow)

    def _revoke_sessions(self, s: Session, user_id: str, reason: str) -> None:
        s.execute(
            sa.update(t.sessions)
            .where(t.sessions.c.user_id == user_id, t.sessions.c.revoked_at.is_(None))
            .values(revoked_at=now(), revoked_reason=reason)
        )

    def reset_password(
        self,
        actor: Actor,
        user_id: str,
        password: str = "",
        temporary: bool = True,
        realm: str | None = None,
    ) -> str:
        """Set a password (or generate a one-time one, returned); unlocks the account."""
        with self.read() as s:
            row = self.get_user_row(s, user_id, realm)
        one_time = ""
        if password:
            try:
                model.check_password(password, "password", username=row["username"])
            except Invalid as exc:
                raise invalid(exc) from None
        else:
            one_time = password = security.new_secret(12)
            temporary = True
        pw_hash = security.hash_password(password)
        with self._uow() as uow:
            s = uow.session
            row = self.get_user_row(s, user_id, realm)
            self.require_agency_admin(s, actor, row["agency_code"])
            s.execute(
                sa.update(t.users)
                .where(t.users.c.id == user_id)
                .values(
                    password_hash=pw_hash,
                    password_temporary=temporary,
                    failed_logins=0,
                    locked_until=None,
                    status=Status.ACTIVE if row["status"] == Status.LOCKED else row["status"],
                    updated_at=now(),
                    version=row["version"] + 1,
                )
            )
            self._change(
                uow,
                actor,
                "user.reset_password",
                user_id,
                ev.PasswordReset(user_id=user_id, actor_id=actor.id)
                if row["realm"] == REALM
                else None,
            )
            self._commit(uow)
        return one_time

    def set_totp(self, actor: Actor, user_id: str, enable: bool) -> str:
        """Turn the TOTP second factor on (returns the new base32 secret) or off."""
        secret = security_totp_secret() if enable else None
        with self._uow() as uow:
            s = uow.session
            row = self.get_user_row(s, user_id)
            self.require_agency_admin(s, actor, row["agency_code"])
            s.execute(
                sa.update(t.users)
                .where(t.users.c.id == user_id)
                .values(totp_secret=secret, updated_at=now(), version=row["version"] + 1)
            )
            self._change(
                uow, actor, "user.totp_enable" if enable else "user.totp_disable", user_id, None
            )
            self._commit(uow)
        return secret or ""

    # --- roles ----------------------------------------------------------------------------

    def grant_role(
        self,
        actor: Actor,
        user_id: str,
        role: str,
        agency_code: str,
        include_sub: bool = False,
    ) -> pb.User:
        with self._uow() as uow:
            s = uow.session
            row = self.get_user_row(s, user_id)
            if agency_code:
                try:
                    model.check_agency_code(agency_code, "agency_code")
                except Invalid as exc:
                    raise invalid(exc) from None
                self.get_agency_row(s, agency_code)
            if role == "admin" or not agency_code:
                self.require_platform_admin(actor)  # only admins make admins
            else:
                self.require_agency_admin(s, actor, agency_code)
            if role not in model.ROLE_NUMBERS and not self.realm_role_exists(s, row["realm"], role):
                raise NotFound(f"role {role} not found", resource_type="role", resource_name=role)
            key = (
                (t.role_grants.c.user_id == user_id)
                & (t.role_grants.c.role == role)
                & (t.role_grants.c.agency_code == agency_code)
            )
            existing = s.execute(sa.select(t.role_grants).where(key)).mappings().first()
            if existing is None or existing["include_sub"] != include_sub:
                if existing is not None:
                    s.execute(sa.delete(t.role_grants).where(key))
                s.execute(
                    sa.insert(t.role_grants).values(
                        user_id=user_id,
                        role=role,
                        agency_code=agency_code,
                        include_sub=include_sub,
                        granted_at=now(),
                        granted_by=actor.id,
                    )
                )
                s.execute(
                    sa.update(t.users)
                    .where(t.users.c.id == user_id)
                    .values(updated_at=now(), version=row["version"] + 1)
                )
                g = s.execute(sa.select(t.role_grants).where(key)).mappings().one()
                self._change(
                    uow,
                    actor,
                    "role.grant",
                    user_id,
                    ev.RoleGranted(user_id=user_id, grant=proto.grant(g), actor_id=actor.id)
                    if row["realm"] == REALM
                    else None,
                    role=role,
                    agency_code=agency_code,
                )
            msg = self.user_msg(s, self.get_user_row(s, user_id))
            self._commit(uow)
        return msg

    def revoke_role(
        self, actor: Actor, user_id: str, role: str, agency_code: str | None
    ) -> pb.User:
        """Revoke a role in one agency, or (agency_code None) in every agency."""
        with self._uow() as uow:
            s = uow.session
            row = self.get_user_row(s, user_id)
            if role == "admin" or not agency_code:
                self.require_platform_admin(actor)
            else:
                self.require_agency_admin(s, actor, agency_code)
            cond = (t.role_grants.c.user_id == user_id) & (t.role_grants.c.role == role)
            if agency_code is not None:
                cond = cond & (t.role_grants.c.agency_code == agency_code)
            gone = s.execute(sa.select(t.role_grants.c.agency_code).where(cond)).scalars().all()
            if gone:
                s.execute(sa.delete(t.role_grants).where(cond))
                s.execute(
                    sa.update(t.users)
                    .where(t.users.c.id == user_id)
                    .values(updated_at=now(), version=row["version"] + 1)
                )
                for code in gone:
                    self._change(
                        uow,
                        actor,
                        "role.revoke",
                        user_id,
                        ev.RoleRevoked(
                            user_id=user_id,
                            role=model.ROLE_NUMBERS.get(role, 0),  # type: ignore[arg-type]
                            agency_code=code,
                            actor_id=actor.id,
                        )
                        if row["realm"] == REALM
                        else None,
                        role=role,
                        agency_code=code,
                    )
            msg = self.user_msg(s, self.get_user_row(s, user_id))
            self._commit(uow)
        return msg

    def realm_role_exists(self, s: Session, realm: str, name: str) -> bool:
        return (
            s.execute(
                sa.select(t.realm_roles.c.id).where(
                    t.realm_roles.c.realm == realm, t.realm_roles.c.name == name
                )
            ).first()
            is not None
        )

    def list_users(self, req: pb.ListUsersRequest, realm: str = REALM) -> pb.ListUsersResponse:
        size = page_size(req.page_size, 50, 500)
        offset = decode_page(req.page_token)
        q = sa.select(t.users).where(t.users.c.realm == realm)
        with self.read() as s:
            if req.agency_code:
                codes = [req.agency_code]
                if req.include_sub_agencies:
                    codes = self.subtree(s, req.agency_code)
                q = q.where(t.users.c.agency_code.in_(codes))
            if req.role:
                name = model.ROLE_NAMES.get(int(req.role))
                q = q.where(
                    t.users.c.id.in_(
                        sa.select(t.role_grants.c.user_id).where(t.role_grants.c.role == name)
                    )
                )
            if req.status:
                q = q.where(t.users.c.status == int(req.status))
            if req.group_id:
                q = q.where(
                    t.users.c.id.in_(
                        sa.select(t.group_members.c.user_id).where(
                            t.group_members.c.group_id == req.group_id
                        )
                    )
                )
            if req.query:
                if len(req.query) > 200:
                    raise InvalidArgument("query", "at most 200 characters")
                q = q.where(t.users.c.search_text.like(_like(fold(req.query)), escape="\\"))
            total = s.execute(sa.select(sa.func.count()).select_from(q.subquery())).scalar_one()
            rows = (
                s.execute(q.order_by(t.users.c.username).offset(offset).limit(size))
                .mappings()
                .all()
            )
            users = [self.user_msg(s, r) for r in rows]
        nxt = encode_page(offset + size) if offset + size < total else ""
        return pb.ListUsersResponse(users=users, next_page_token=nxt, total_size=total)

    def subtree(self, s: Session, code: str) -> list[str]:
        rows = s.execute(sa.select(t.agencies.c.code, t.agencies.c.parent_code)).all()
        kids: dict[str, list[str]] = {}
        for r in rows:
            if r.parent_code:
                kids.setdefault(r.parent_code, []).append(r.code)
        out, todo = [], [code]
        while todo:
            c = todo.pop()
            if c in out:
                continue
            out.append(c)
            todo.extend(kids.get(c, []))
        return out

    def get_user(self, *, user_id: str = "", username: str = "", realm: str = REALM) -> pb.User:
        with self.read() as s:
            if user_id:
                return self.user_msg(s, self.get_user_row(s, user_id, realm))
            row = self.find_user(s, realm, username)
            if row is None:
                raise NotFound(
                    f"user {username} not found", resource_type="user", resource_name=username
                )
            return self.user_msg(s, row)

    # --- groups ---------------------------------------------------------------------------

    def get_group_row(self, s: Session, group_id: str) -> Row:
        row = s.execute(sa.select(t.groups).where(t.groups.c.id == group_id)).mappings().first()
        if row is None:
            raise NotFound(
                f"group {group_id} not found", resource_type="group", resource_name=group_id
            )
        return row

    def members_of(self, s: Session, group_id: str) -> list[str]:
        return list(
            s.execute(
                sa.select(t.group_members.c.user_id).where(t.group_members.c.group_id == group_id)
            )
            .scalars()
            .all()
        )

    def group_msg(self, s: Session, row: Row) -> pb.Group:
        return proto.group(row, self.members_of(s, row["id"]))

    def create_group(
        self, actor: Actor, g: pb.Group, request_id: str = "", realm: str = REALM
    ) -> pb.Group:
        try:
            name = model.check_name(g.name, "group.name")
            desc = model.check_name(g.description, "group.description", 1000, required=False)
            if g.agency_code:
                model.check_agency_code(g.agency_code, "group.agency_code")
            elif realm == REALM and not actor.is_platform_admin:
                raise Invalid("group.agency_code", "is required")
        except Invalid as exc:
            raise invalid(exc) from None
        with self._uow() as uow:
            s = uow.session
            if request_id:
                done = s.execute(
                    sa.select(t.idempotency.c.result_id).where(
                        t.idempotency.c.request_id == request_id
                    )
                ).scalar()
                if done:
                    return self.group_msg(s, self.get_group_row(s, done))
            if g.agency_code:
                self.get_agency_row(s, g.agency_code)
            self.require_agency_admin(s, actor, g.agency_code)
            clash = s.execute(
                sa.select(t.groups.c.id).where(
                    t.groups.c.realm == realm,
                    t.groups.c.agency_code == g.agency_code,
                    t.groups.c.name == name,
                )
            ).first()
            if clash:
                raise AlreadyExists(
                    f"group {name} already exists", resource_type="group", resource_name=name
                )
            gid, ts = str(uuid.uuid4()), now()
            s.execute(
                sa.insert(t.groups).values(
                    id=gid,
                    realm=realm,
                    name=name,
                    agency_code=g.agency_code,
                    description=desc,
                    created_at=ts,
                    updated_at=ts,
                    version=1,
                )
            )
            if request_id:
                s.execute(
                    sa.insert(t.idempotency).values(
                        request_id=request_id, kind="group", result_id=gid
                    )
                )
            self._change(uow, actor, "group.create", gid, None, name=name)
            if g.member_ids:
                self._add_members(uow, actor, gid, list(g.member_ids))
            msg = self.group_msg(s, self.get_group_row(s, gid))
            self._commit(uow)
        return msg

    def update_group(self, actor: Actor, g: pb.Group, mask: Sequence[str]) -> pb.Group:
        values: dict[str, Any] = {}
        try:
            for f in mask:
                if f == "name":
                    values["name"] = model.check_name(g.name, "group.name")
                elif f == "description":
                    values["description"] = model.check_name(
                        g.description, "group.description", 1000, required=False
                    )
                else:
                    raise Invalid("update_mask", f"field {f!r} cannot be changed")
        except Invalid as exc:
            raise invalid(exc) from None
        if not values:
            raise InvalidArgument("update_mask", "name at least one field to change")
        with self._uow() as uow:
            s = uow.session
            row = self.get_group_row(s, g.id)
            self.require_agency_admin(s, actor, row["agency_code"])
            check_etag(row, g.etag, f"group {row['name']}")
            s.execute(
                sa.update(t.groups)
                .where(t.groups.c.id == g.id)
                .values(updated_at=now(), version=row["version"] + 1, **values)
            )
            self._change(uow, actor, "group.update", g.id, None, fields=list(values))
            msg = self.group_msg(s, self.get_group_row(s, g.id))
            self._commit(uow)
        return msg

    def delete_group(self, actor: Actor, group_id: str, etag: str = "") -> None:
        with self._uow() as uow:
            s = uow.session
            row = self.get_group_row(s, group_id)
            self.require_agency_admin(s, actor, row["agency_code"])
            check_etag(row, etag, f"group {row['name']}")
            members = self.members_of(s, group_id)
            s.execute(sa.delete(t.group_members).where(t.group_members.c.group_id == group_id))
            s.execute(sa.delete(t.groups).where(t.groups.c.id == group_id))
            self._change(
                uow,
                actor,
                "group.delete",
                group_id,
                ev.GroupMembershipChanged(
                    group_id=group_id,
                    agency_code=row["agency_code"],
                    removed_user_ids=members,
                    actor_id=actor.id,
                )
                if members
                else None,
            )
            self._commit(uow)

    def _add_members(self, uow: UnitOfWork, actor: Actor, group_id: str, ids: list[str]) -> None:
        s = uow.session
        row = self.get_group_row(s, group_id)
        have = set(self.members_of(s, group_id))
        added = []
        for uid in dict.fromkeys(ids):
            self.get_user_row(s, uid)
            if uid not in have:
                s.execute(sa.insert(t.group_members).values(group_id=group_id, user_id=uid))
                added.append(uid)
        if added:
            self._change(
                uow,
                actor,
                "group.add_members",
                group_id,
                ev.GroupMembershipChanged(
                    group_id=group_id,
                    agency_code=row["agency_code"],
                    added_user_ids=added,
                    actor_id=actor.id,
                ),
                users=added,
            )

    def change_members(
        self, actor: Actor, group_id: str, add: list[str], remove: list[str]
    ) -> pb.Group:
        with self._uow() as uow:
            s = uow.session
            row = self.get_group_row(s, group_id)
            self.require_agency_admin(s, actor, row["agency_code"])
            if add:
                self._add_members(uow, actor, group_id, add)
            if remove:
                have = set(self.members_of(s, group_id))
                gone = [u for u in dict.fromkeys(remove) if u in have]
                if gone:
                    s.execute(
                        sa.delete(t.group_members).where(
                            t.group_members.c.group_id == group_id,
                            t.group_members.c.user_id.in_(gone),
                        )
                    )
                    self._change(
                        uow,
                        actor,
                        "group.remove_members",
                        group_id,
                        ev.GroupMembershipChanged(
                            group_id=group_id,
                            agency_code=row["agency_code"],
                            removed_user_ids=gone,
                            actor_id=actor.id,
                        ),
                        users=gone,
                    )
            msg = self.group_msg(s, self.get_group_row(s, group_id))
            self._commit(uow)
        return msg

    def get_group(self, group_id: str) -> pb.Group:
        with self.read() as s:
            return self.group_msg(s, self.get_group_row(s, group_id))

    def list_groups(self, req: pb.ListGroupsRequest, realm: str = REALM) -> pb.ListGroupsResponse:
        size = page_size(req.page_size, 50, 500)
        offset = decode_page(req.page_token)
        q = sa.select(t.groups).where(t.groups.c.realm == realm)
        if req.agency_code:
            q = q.where(t.groups.c.agency_code == req.agency_code)
        if req.member_id:
            q = q.where(
                t.groups.c.id.in_(
                    sa.select(t.group_members.c.group_id).where(
                        t.group_members.c.user_id == req.member_id
                    )
                )
            )
        with self.read() as s:
            rows = (
                s.execute(q.order_by(t.groups.c.name).offset(offset).limit(size + 1))
                .mappings()
                .all()
            )
            msgs = [self.group_msg(s, r) for r in rows[:size]]
        nxt = encode_page(offset + size) if len(rows) > size else ""
        return pb.ListGroupsResponse(groups=msgs, next_page_token=nxt)

    # --- client systems -------------------------------------------------------------------

    def get_client_row(self, s: Session, client_id: str, realm: str = REALM) -> Row:
        row = (
            s.execute(
                sa.select(t.clients).where(
                    t.clients.c.realm == realm, t.clients.c.client_id == client_id
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(
                f"client {client_id} not found", resource_type="client", resource_name=client_id
            )
        return row

    def create_client(
        self,
        actor: Actor,
        c: pb.ClientSystem,
        *,
        realm: str = REALM,
        secret: str | None = "",
        redirect_uris: Sequence[str] = (),
        service_accounts: bool = True,
        direct_grants: bool = True,
        roles: Sequence[str] = (),
    ) -> tuple[pb.ClientSystem, str, str]:
        """Register a client; returns (client, secret shown once, internal id).

        secret "" generates one; None makes a public client (no secret; PKCE required)."""
        self.require_platform_admin(actor)
        try:
            client_id = model.check_client_id(c.client_id, "client.client_id")
            name = model.check_name(c.display_name or client_id, "client.display_name")
            if c.owner_agency_code:
                model.check_agency_code(c.owner_agency_code, "client.owner_agency_code")
            elif realm == REALM and service_accounts:
                raise Invalid("client.owner_agency_code", "is required")
            for uri in redirect_uris:
                if not uri.startswith(("https://", "http://")) or len(uri) > 2000:
                    raise Invalid("redirectUris", f"{uri!r} is not an absolute http(s) URI")
            if c.token_ttl_seconds < 0 or c.token_ttl_seconds > 3600:
                raise Invalid("client.token_ttl_seconds", "must be between 0 and 3600")
            if secret:
                if len(secret) < 16 or len(secret) > 200 or model._has_control(secret):
                    raise Invalid("secret", "16-200 printable characters")
        except Invalid as exc:
            raise invalid(exc) from None
        if secret == "":
            secret = security.new_secret()
        with self._uow() as uow:
            s = uow.session
            if c.owner_agency_code:
                self.get_agency_row(s, c.owner_agency_code)
            if s.execute(
                sa.select(t.clients.c.id).where(
                    t.clients.c.realm == realm, t.clients.c.client_id == client_id
                )
            ).first():
                raise AlreadyExists(
                    f"client {client_id} already exists",
                    resource_type="client",
                    resource_name=client_id,
                )
            ts, internal = now(), str(uuid.uuid4())
            service_user = None
            if service_accounts and secret:
                service_user = str(uuid.uuid4())
                s.execute(
                    sa.insert(t.users).values(
                        id=service_user,
                        realm=realm,
                        username=f"service-account-{client_id}",
                        display_name=name,
                        email="",
                        phone="",
                        agency_code=c.owner_agency_code or None,
                        position="",
                        status=Status.ACTIVE,
                        password_hash=None,
                        password_temporary=False,
                        failed_logins=0,
                        service_client_id=client_id,
                        search_text=fold(f"service-account-{client_id} {name}"),
                        created_at=ts,
                        updated_at=ts,
                        version=1,
                    )
                )
                for role in roles:
                    s.execute(
                        sa.insert(t.role_grants).values(
                            user_id=service_user,
                            role=role,
                            agency_code=c.owner_agency_code,
                            include_sub=False,
                            granted_at=ts,
                            granted_by=actor.id,
                        )
                    )
            s.execute(
                sa.insert(t.clients).values(
                    id=internal,
                    realm=realm,
                    client_id=client_id,
                    display_name=name,
                    secret_hash=security.hash_secret(secret) if secret else None,
                    owner_agency_code=c.owner_agency_code,
                    redirect_uris=list(redirect_uris),
                    scopes=list(c.scopes),
                    service_accounts=bool(service_user),
                    direct_grants=direct_grants,
                    service_user_id=service_user,
                    status=Status.ACTIVE,
                    token_ttl=c.token_ttl_seconds,
                    created_at=ts,
                    secret_rotated_at=ts if secret else None,
                    version=1,
                )
            )
            msg = proto.client(self.get_client_row(s, client_id, realm))
            self._change(
                uow,
                actor,
                "client.create",
                client_id,
                ev.ClientSystemCreated(client=msg, actor_id=actor.id) if realm == REALM else None,
            )
            self._commit(uow)
        return msg, secret or "", internal

    def update_client(
        self, actor: Actor, c: pb.ClientSystem, mask: Sequence[str], realm: str = REALM
    ) -> pb.ClientSystem:
        self.require_platform_admin(actor)
        values: dict[str, Any] = {}
        try:
            for f in mask:
                if f == "display_name":
                    values[f] = model.check_name(c.display_name, "client.display_name")
                elif f == "scopes":
                    values[f] = list(c.scopes)
                elif f == "token_ttl_seconds":
                    if not 0 <= c.token_ttl_seconds <= 3600:
                        raise Invalid("client.token_ttl_seconds", "must be between 0 and 3600")
                    values["token_ttl"] = c.token_ttl_seconds
                elif f == "owner_agency_code":
                    values[f] = model.check_agency_code(
                        c.owner_agency_code, "client.owner_agency_code"
                    )
                else:
                    raise Invalid("update_mask", f"field {f!r} cannot be changed")
        except Invalid as exc:
            raise invalid(exc) from None
        if not values:
            raise InvalidArgument("update_mask", "name at least one field to change")
        with self._uow() as uow:
            s = uow.session
            row = self.get_client_row(s, c.client_id, realm)
            check_etag(row, c.etag, f"client {c.client_id}")
            if "owner_agency_code" in values:
                self.get_agency_row(s, values["owner_agency_code"])
            s.execute(
                sa.update(t.clients)
                .where(t.clients.c.id == row["id"])
                .values(version=row["version"] + 1, **values)
            )
            self._change(uow, actor, "client.update", c.client_id, None, fields=list(values))
            msg = proto.client(self.get_client_row(s, c.client_id, realm))
            self._commit(uow)
        return msg

    def disable_client(
        self, actor: Actor, client_id: str, etag: str, reason: str, realm: str = REALM
    ) -> pb.ClientSystem:
        self.require_platform_admin(actor)
        try:
            reason = model.check_name(reason, "reason", 500, required=False)
        except Invalid as exc:
            raise invalid(exc) from None
        with self._uow() as uow:
            s = uow.session
            row = self.get_client_row(s, client_id, realm)
            check_etag(row, etag, f"client {client_id}")
            s.execute(
                sa.update(t.clients)
                .where(t.clients.c.id == row["id"])
                .values(status=Status.DISABLED, version=row["version"] + 1)
            )
            s.execute(
                sa.update(t.sessions)
                .where(t.sessions.c.client_id == client_id, t.sessions.c.revoked_at.is_(None))
                .values(revoked_at=now(), revoked_reason="client disabled")
            )
            self._change(
                uow,
                actor,
                "client.disable",
                client_id,
                ev.ClientSystemDisabled(client_id=client_id, reason=reason, actor_id=actor.id)
                if realm == REALM
                else None,
            )
            msg = proto.client(self.get_client_row(s, client_id, realm))
            self._commit(uow)
        return msg

    def rotate_client_secret(
        self, actor: Actor, client_id: str, realm: str = REALM
    ) -> tuple[str, pb.ClientSystem]:
        self.require_platform_admin(actor)
        secret = security.new_secret()
        with self._uow() as uow:
            s = uow.session
            row = self.get_client_row(s, client_id, realm)
            if row["secret_hash"] is None:
                raise FailedPrecondition(f"client {client_id} is public: it has no secret")
            s.execute(
                sa.update(t.clients)
                .where(t.clients.c.id == row["id"])
                .values(
                    secret_hash=security.hash_secret(secret),
                    secret_rotated_at=now(),
                    version=row["version"] + 1,
                )
            )
            self._change(uow, actor, "client.rotate_secret", client_id, None)
            msg = proto.client(self.get_client_row(s, client_id, realm))
            self._commit(uow)
        return secret, msg

    def delete_client(self, actor: Actor, internal_id: str, realm: str) -> None:
        self.require_platform_admin(actor)
        with self._uow() as uow:
            s = uow.session
            row = (
                s.execute(
                    sa.select(t.clients).where(
                        t.clients.c.id == internal_id, t.clients.c.realm == realm
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                raise NotFound(f"client {internal_id} not found")
            s.execute(sa.delete(t.clients).where(t.clients.c.id == internal_id))
            if row["service_user_id"]:
                s.execute(
                    sa.update(t.users)
                    .where(t.users.c.id == row["service_user_id"])
                    .values(status=Status.DISABLED, realm=f"deleted:{realm}")
                )
            self._change(
                uow,
                actor,
                "client.delete",
                row["client_id"],
                ev.ClientSystemDisabled(
                    client_id=row["client_id"], reason="deleted", actor_id=actor.id
                )
                if realm == REALM
                else None,
            )
            self._commit(uow)

    def list_clients(self, req: Any, realm: str = REALM) -> tuple[list[pb.ClientSystem], str]:
        size = page_size(req.page_size, 50, 500)
        offset = decode_page(req.page_token)
        q = sa.select(t.clients).where(t.clients.c.realm == realm)
        if req.owner_agency_code:
            q = q.where(t.clients.c.owner_agency_code == req.owner_agency_code)
        if req.status:
            q = q.where(t.clients.c.status == int(req.status))
        with self.read() as s:
            rows = (
                s.execute(q.order_by(t.clients.c.client_id).offset(offset).limit(size + 1))
                .mappings()
                .all()
            )
        nxt = encode_page(offset + size) if len(rows) > size else ""
        return [proto.client(r) for r in rows[:size]], nxt


def security_totp_secret() -> str:
    import pyotp

    return pyotp.random_base32()
