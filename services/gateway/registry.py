"""Member registry and access rights: who may call which methods and use which topics.

Stored in the gateway database; every change writes an audit row and emits its event
(lgsp.api.gateway.v1: MemberRegistered, MemberUpdated, MemberStatusChanged, AccessGranted,
AccessRevoked on topic lgsp.gateway.v1) in the same transaction. The proxy decides from an
in-memory snapshot, reloaded after every change made here and every `refresh_seconds` (to see
changes made by `lgsp member`/`lgsp access` or another gateway instance).

Names:
- member code: "<agency code>:<subsystem>", e.g. "000.00.61.H27:motcua";
- a service right names a proto service ("lgsp.api.documents.v1.DocumentService", or a
  pattern such as "lgsp.api.documents.v1.*") and methods (none = all of them);
- topics are "lgsp.<area>.v<N>" (patterns with "*" for subscribers); PUBLISH is granted on
  one exact topic (e.g. a district one-stop desk on "lgsp.dossiers.v1"), never on the
  gateway's own "lgsp.gateway.v1", and its event types, if listed, must be of that topic's
  package (lgsp.api.<area>.v<N>.*).
"""

from __future__ import annotations

import fnmatch
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.engine import Engine

from lgsp.agency_code import agency_code_problem
from lgsp.api.gateway.v1 import events_pb2 as ev
from lgsp.api.gateway.v1 import gateway_pb2 as pb
from lgsp.db import UnitOfWork, utcnow
from lgsp.grpc.errors import (
    Aborted,
    AlreadyExists,
    InvalidArgument,
    NotFound,
)
from services.gateway import tables as t

__all__ = ["Decision", "MemberInfo", "Registry", "topic_problem"]

_SUBSYSTEM = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")
_SERVICE = re.compile(r"lgsp\.api\.[a-z][a-z0-9_]*\.(v[0-9]+|\*)(\.[A-Za-z][A-Za-z0-9_]*|\.\*)?|\*")
_METHOD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_TOPIC = re.compile(r"lgsp\.([a-z][a-z0-9_]*)\.v([0-9]+)")
_TOPIC_PATTERN = re.compile(r"lgsp\.([a-z][a-z0-9_]*|\*)\.(v[0-9]+|\*)|lgsp\.\*")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_MEMBER_FIELDS = {
    "name",
    "agency_code",
    "kind",
    "client_id",
    "endpoint",
    "certificate_sha256",
    "rate_limit_per_minute",
    "contact_email",
    "description",
}


# Topics only the platform itself publishes to.
RESERVED_TOPICS = frozenset({"lgsp.gateway.v1"})


def topic_problem(topic: str, *, pattern: bool = False) -> str | None:
    """Why `topic` is not an event topic name (lgsp.<area>.v<N>), or None."""
    regex = _TOPIC_PATTERN if pattern else _TOPIC
    if not regex.fullmatch(topic):
        return "must be lgsp.<area>.v<N>, e.g. lgsp.documents.v1" + (
            " (or a pattern such as lgsp.*)" if pattern else ""
        )
    return None


def _ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def _etag(version: int) -> str:
    return f"v{version}"


@dataclass(frozen=True, slots=True)
class MemberInfo:
    code: str
    client_id: str
    active: bool
    rate_limit_per_minute: int
    certificate_sha256: str


@dataclass(frozen=True, slots=True)
class _Right:
    id: str
    member_code: str
    kind: str
    service: str
    methods: frozenset[str]
    topic: str
    access: int
    event_types: frozenset[str]
    rate_limit_per_minute: int
    expire_at: float | None  # epoch seconds


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    right_id: str = ""
    reason: str = ""
    rate_limit_per_minute: int = 0
    expire_at: float | None = None


@dataclass
class _Snapshot:
    by_code: dict[str, MemberInfo] = field(default_factory=dict)
    by_client: dict[str, MemberInfo] = field(default_factory=dict)
    by_cert: dict[str, MemberInfo] = field(default_factory=dict)
    rights: dict[str, list[_Right]] = field(default_factory=dict)


class Registry:
    def __init__(
        self,
        engine: Engine,
        *,
        source: str = "gateway",
        after_commit: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.source = source
        self.after_commit = after_commit
        self._clock = clock
        self._snap = _Snapshot()
        self._decisions: dict[tuple[str, str], Decision] = {}
        self._stamp: int | None = None  # the newest audit row the snapshot was read after

    # --- snapshot for the proxy ---------------------------------------------------------------

    def refresh(self) -> None:
        """Reload if anything changed since the last load (here or in another process: every
        change writes an audit row), else only forget the cached decisions (a right may have
        expired). An idle gateway reads one number instead of every member and right."""
        with self.engine.connect() as conn:
            stamp = conn.execute(sa.select(sa.func.max(t.audit_log.c.id))).scalar()
        if stamp is None or stamp != self._stamp:
            self.reload()
        else:
            self._decisions = {}

    def reload(self) -> None:
        snap = _Snapshot()
        with self.engine.connect() as conn:
            self._stamp = conn.execute(sa.select(sa.func.max(t.audit_log.c.id))).scalar()
            for r in conn.execute(sa.select(t.members)).mappings():
                info = MemberInfo(
                    r["code"],
                    r["client_id"],
                    r["status"] == pb.MEMBER_STATUS_ACTIVE,
                    r["rate_limit_per_minute"],
                    r["certificate_sha256"],
                )
                snap.by_code[info.code] = info
                snap.by_client[info.client_id] = info
                if info.certificate_sha256:
                    snap.by_cert[info.certificate_sha256] = info
            for r in conn.execute(sa.select(t.access_rights)).mappings():
                expire = r["expire_time"]
                if expire is not None and expire.tzinfo is None:
                    expire = expire.replace(tzinfo=UTC)
                snap.rights.setdefault(r["member_code"], []).append(
                    _Right(
                        r["id"],
                        r["member_code"],
                        r["kind"],
                        r["service"],
                        frozenset(r["methods"] or ()),
                        r["topic"],
                        r["access"],
                        frozenset(r["event_types"] or ()),
                        r["rate_limit_per_minute"],
                        expire.timestamp() if expire is not None else None,
                    )
                )
        self._snap = snap
        self._decisions = {}

    def member_for_client(self, client_id: str) -> MemberInfo | None:
        return self._snap.by_client.get(client_id)

    def member_for_certificate(self, sha256: str) -> MemberInfo | None:
        return self._snap.by_cert.get(sha256)

    def member(self, code: str) -> MemberInfo | None:
        return self._snap.by_code.get(code)

    def check_method(self, member_code: str, method: str) -> Decision:
        """Whether the member may call the full method "/pkg.Service/Method" now."""
        key = (member_code, method)
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._decide_method(member_code, method)
            if len(self._decisions) > 100_000:
                self._decisions = {}
            self._decisions[key] = decision
        if decision.expire_at is not None and self._clock() >= decision.expire_at:
            decision = self._decisions[key] = self._decide_method(member_code, method)
        return decision

    def _decide_method(self, member_code: str, method: str) -> Decision:
        member = self._snap.by_code.get(member_code)
        if member is None:
            return Decision(False, reason="unknown member")
        if not member.active:
            return Decision(False, reason="member suspended")
        service, _, name = method.lstrip("/").partition("/")
        now, expired = self._clock(), False
        for right in self._snap.rights.get(member_code, ()):
            if right.kind != "service" or not fnmatch.fnmatchcase(service, right.service):
                continue
            if right.methods and name not in right.methods:
                continue
            if right.expire_at is not None and now >= right.expire_at:
                expired = True
                continue
            return Decision(True, right.id, "", right.rate_limit_per_minute, right.expire_at)
        return Decision(False, reason="right expired" if expired else "no right")

    def check_topic(
        self, member_code: str, topic: str, access: int, event_type: str = ""
    ) -> Decision:
        member = self._snap.by_code.get(member_code)
        if member is None:
            return Decision(False, reason="unknown member")
        if not member.active:
            return Decision(False, reason="member suspended")
        problem = topic_problem(topic)
        if problem:
            return Decision(False, reason=f"topic {problem}")
        now, expired = self._clock(), False
        for right in self._snap.rights.get(member_code, ()):
            if right.kind != "topic" or right.access != access:
                continue
            if not fnmatch.fnmatchcase(topic, right.topic):
                continue
            if right.event_types and event_type and event_type not in right.event_types:
                continue
            if right.expire_at is not None and now >= right.expire_at:
                expired = True
                continue
            return Decision(True, right.id, "", right.rate_limit_per_minute, right.expire_at)
        return Decision(False, reason="right expired" if expired else "no right")

    # --- members ------------------------------------------------------------------------------

    def _member_pb(self, r: Any) -> pb.Member:
        return pb.Member(
            code=r["code"],
            name=r["name"],
            agency_code=r["agency_code"],
            kind=r["kind"],
            client_id=r["client_id"],
            endpoint=r["endpoint"],
            certificate_sha256=r["certificate_sha256"],
            rate_limit_per_minute=r["rate_limit_per_minute"],
            status=r["status"],
            contact_email=r["contact_email"],
            description=r["description"],
            create_time=_ts(r["create_time"]),
            update_time=_ts(r["update_time"]),
            etag=_etag(r["version"]),
        )

    def _validate_member(self, m: pb.Member, fields: Sequence[str]) -> None:
        for name in fields:
            value = getattr(m, name)
            if name == "code":
                agency, sep, sub = value.partition(":")
                problem = agency_code_problem(agency)
                if not sep or problem or not _SUBSYSTEM.fullmatch(sub):
                    raise InvalidArgument(
                        "member.code",
                        "must be <agency code>:<subsystem>, e.g. 000.00.61.H27:motcua"
                        + (f" (agency code {problem})" if sep and problem else ""),
                    )
            elif name == "name" and not value.strip():
                raise InvalidArgument("member.name", "is required")
            elif name == "agency_code" and (problem := agency_code_problem(value)):
                raise InvalidArgument("member.agency_code", problem)
            elif name == "kind" and value not in (1, 2, 3, 4):
                raise InvalidArgument("member.kind", "is required")
            elif name == "client_id" and not re.fullmatch(
                r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}", value
            ):
                raise InvalidArgument("member.client_id", "is required (an OAuth client id)")
            elif name == "rate_limit_per_minute" and value < 0:
                raise InvalidArgument("member.rate_limit_per_minute", "must be ≥ 0")
            elif name == "contact_email" and value and not _EMAIL.fullmatch(value):
                raise InvalidArgument("member.contact_email", "is not a mail address")
            elif (
                name == "certificate_sha256" and value and not re.fullmatch(r"[0-9a-f]{64}", value)
            ):
                raise InvalidArgument(
                    "member.certificate_sha256", "must be 64 lowercase hex digits"
                )
            elif name == "endpoint" and len(value) > 500:
                raise InvalidArgument("member.endpoint", "is longer than 500 characters")
            elif name == "description" and len(value) > 2000:
                raise InvalidArgument("member.description", "is longer than 2000 characters")

    def _audit(self, uow: UnitOfWork, actor: str, action: str, code: str, **details: Any) -> None:
        uow.session.execute(
            sa.insert(t.audit_log).values(
                time=utcnow(), actor=actor, action=action, member_code=code, details=details
            )
        )

    def _commit(self, uow: UnitOfWork) -> None:
        uow.commit()
        self.reload()
        self.after_commit()

    def register_member(self, actor: str, m: pb.Member) -> pb.Member:
        self._validate_member(
            m,
            (
                "code",
                "name",
                "agency_code",
                "kind",
                "client_id",
                "rate_limit_per_minute",
                "contact_email",
                "certificate_sha256",
                "endpoint",
                "description",
            ),
        )
        now = utcnow()
        with UnitOfWork(self.engine, source=self.source) as uow:
            s = uow.session
            if s.execute(sa.select(t.members.c.code).where(t.members.c.code == m.code)).first():
                raise AlreadyExists(
                    f"member {m.code} exists", resource_type="member", resource_name=m.code
                )
            if s.execute(
                sa.select(t.members.c.code).where(t.members.c.client_id == m.client_id)
            ).first():
                raise AlreadyExists(
                    f"client {m.client_id} already belongs to a member",
                    resource_type="client",
                    resource_name=m.client_id,
                )
            s.execute(
                sa.insert(t.members).values(
                    code=m.code,
                    name=m.name.strip(),
                    agency_code=m.agency_code,
                    kind=m.kind,
                    client_id=m.client_id,
                    endpoint=m.endpoint,
                    certificate_sha256=m.certificate_sha256,
                    rate_limit_per_minute=m.rate_limit_per_minute,
                    status=pb.MEMBER_STATUS_ACTIVE,
                    contact_email=m.contact_email,
                    description=m.description,
                    create_time=now,
                    update_time=now,
                    version=1,
                )
            )
            row = s.execute(sa.select(t.members).where(t.members.c.code == m.code)).mappings().one()
            stored = self._member_pb(row)
            self._audit(uow, actor, "member.register", m.code, client_id=m.client_id)
            uow.emit(ev.MemberRegistered(member=stored, actor_id=actor), subject=m.code)
            self._commit(uow)
        return stored

    def update_member(self, actor: str, m: pb.Member, paths: Sequence[str]) -> pb.Member:
        paths = [p.removeprefix("member.") for p in paths]
        if not paths:
            raise InvalidArgument("update_mask", "names no field")
        for p in paths:
            if p not in _MEMBER_FIELDS:
                raise InvalidArgument("update_mask", f"field {p!r} cannot be changed")
        self._validate_member(m, paths)
        with UnitOfWork(self.engine, source=self.source) as uow:
            row = self._row(uow, m.code)
            if m.etag and m.etag != _etag(row["version"]):
                raise Aborted(f"member {m.code} was changed by someone else; re-read it")
            values = {p: getattr(m, p) for p in paths}
            if "client_id" in values and values["client_id"] != row["client_id"]:
                other = uow.session.execute(
                    sa.select(t.members.c.code).where(t.members.c.client_id == values["client_id"])
                ).first()
                if other:
                    raise AlreadyExists(f"client {values['client_id']} already belongs to a member")
            changed = [p for p in paths if values[p] != row[p]]
            uow.session.execute(
                sa.update(t.members)
                .where(t.members.c.code == m.code)
                .values(**values, update_time=utcnow(), version=row["version"] + 1)
            )
            stored = self._member_pb(self._row(uow, m.code))
            self._audit(uow, actor, "member.update", m.code, changed=changed)
            uow.emit(
                ev.MemberUpdated(member=stored, changed_fields=changed, actor_id=actor),
                subject=m.code,
            )
            self._commit(uow)
        return stored

    def set_status(self, actor: str, code: str, etag: str, status: int, reason: str) -> pb.Member:
        with UnitOfWork(self.engine, source=self.source) as uow:
            row = self._row(uow, code)
            if etag and etag != _etag(row["version"]):
                raise Aborted(f"member {code} was changed by someone else; re-read it")
            if row["status"] == status:
                return self._member_pb(row)
            uow.session.execute(
                sa.update(t.members)
                .where(t.members.c.code == code)
                .values(status=status, update_time=utcnow(), version=row["version"] + 1)
            )
            stored = self._member_pb(self._row(uow, code))
            action = (
                "member.suspend" if status == pb.MEMBER_STATUS_SUSPENDED else "member.reactivate"
            )
            self._audit(uow, actor, action, code, reason=reason)
            uow.emit(
                ev.MemberStatusChanged(
                    member_code=code,
                    status=status,  # type: ignore[arg-type]
                    reason=reason,
                    actor_id=actor,
                ),
                subject=code,
            )
            self._commit(uow)
        return stored

    def _row(self, uow: UnitOfWork, code: str) -> Any:
        row = (
            uow.session.execute(sa.select(t.members).where(t.members.c.code == code))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"member {code} not found", resource_type="member", resource_name=code)
        return row

    def get_member(self, code: str) -> pb.Member:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(t.members).where(t.members.c.code == code))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"member {code} not found", resource_type="member", resource_name=code)
        return self._member_pb(row)

    def list_members(self, req: pb.ListMembersRequest) -> pb.ListMembersResponse:
        size = 50 if req.page_size <= 0 else min(req.page_size, 500)
        c = t.members.c
        q = sa.select(t.members).order_by(c.code).limit(size + 1)
        if req.page_token:
            q = q.where(c.code > req.page_token)
        if req.agency_code:
            q = q.where(c.agency_code == req.agency_code)
        if req.kind:
            q = q.where(c.kind == req.kind)
        if req.status:
            q = q.where(c.status == req.status)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        page = rows[:size]
        nxt = page[-1]["code"] if len(rows) > size else ""
        return pb.ListMembersResponse(
            members=[self._member_pb(r) for r in page], next_page_token=nxt
        )

    # --- rights -------------------------------------------------------------------------------

    def _right_pb(self, r: Any) -> pb.AccessRight:
        right = pb.AccessRight(
            id=r["id"],
            member_code=r["member_code"],
            rate_limit_per_minute=r["rate_limit_per_minute"],
            expire_time=_ts(r["expire_time"]),
            legal_basis=r["legal_basis"],
            granted_by=r["granted_by"],
            grant_time=_ts(r["grant_time"]),
        )
        if r["kind"] == "service":
            right.service.CopyFrom(
                pb.ServiceTarget(service=r["service"], methods=sorted(r["methods"] or ()))
            )
        else:
            right.topic.CopyFrom(
                pb.TopicTarget(
                    topic=r["topic"],
                    access=r["access"],
                    event_types=sorted(r["event_types"] or ()),
                )
            )
        return right

    def grant(self, actor: str, right: pb.AccessRight) -> pb.AccessRight:
        target = right.WhichOneof("target")
        if not right.member_code:
            raise InvalidArgument("right.member_code", "is required")
        if target is None:
            raise InvalidArgument("right.target", "a service or a topic is required")
        if right.rate_limit_per_minute < 0:
            raise InvalidArgument("right.rate_limit_per_minute", "must be ≥ 0")
        values: dict[str, Any] = {
            "kind": target,
            "service": "",
            "methods": [],
            "topic": "",
            "access": 0,
            "event_types": [],
        }
        if target == "service":
            st = right.service
            if not _SERVICE.fullmatch(st.service):
                raise InvalidArgument(
                    "right.service.service",
                    "must be a proto service such as lgsp.api.documents.v1.DocumentService "
                    "(or a pattern such as lgsp.api.documents.v1.*)",
                )
            for name in st.methods:
                if not _METHOD.fullmatch(name):
                    raise InvalidArgument("right.service.methods", f"{name!r} is not a method name")
            values.update(service=st.service, methods=sorted(set(st.methods)))
        else:
            tt = right.topic
            if problem := topic_problem(tt.topic, pattern=tt.access == pb.TOPIC_ACCESS_SUBSCRIBE):
                raise InvalidArgument("right.topic.topic", problem)
            if tt.access not in (pb.TOPIC_ACCESS_SUBSCRIBE, pb.TOPIC_ACCESS_PUBLISH):
                raise InvalidArgument("right.topic.access", "SUBSCRIBE or PUBLISH is required")
            if tt.access == pb.TOPIC_ACCESS_PUBLISH:
                if tt.topic in RESERVED_TOPICS:
                    raise InvalidArgument(
                        "right.topic.topic",
                        f"{tt.topic} carries the gateway's own events: members do not publish",
                    )
                package = "lgsp.api." + tt.topic.removeprefix("lgsp.") + "."
                for n, name in enumerate(tt.event_types):
                    if not name.startswith(package):
                        raise InvalidArgument(
                            f"right.topic.event_types[{n}]",
                            f"{name} is not an event of {tt.topic} (types {package}*)",
                        )
            values.update(topic=tt.topic, access=tt.access, event_types=sorted(set(tt.event_types)))
        expire = right.expire_time.ToDatetime(UTC) if right.HasField("expire_time") else None
        with UnitOfWork(self.engine, source=self.source) as uow:
            member = self._row(uow, right.member_code)
            if member is None:  # pragma: no cover - _row raises
                raise NotFound("member not found")
            c = t.access_rights.c
            same = (
                uow.session.execute(
                    sa.select(t.access_rights).where(
                        c.member_code == right.member_code,
                        c.kind == values["kind"],
                        c.service == values["service"],
                        c.topic == values["topic"],
                        c.access == values["access"],
                    )
                )
                .mappings()
                .all()
            )
            for row in same:
                if (
                    sorted(row["methods"] or ()) == values["methods"]
                    and sorted(row["event_types"] or ()) == values["event_types"]
                    and row["rate_limit_per_minute"] == right.rate_limit_per_minute
                ):
                    return self._right_pb(row)  # granting the same right again returns it
            right_id = str(uuid.uuid4())
            uow.session.execute(
                sa.insert(t.access_rights).values(
                    id=right_id,
                    member_code=right.member_code,
                    rate_limit_per_minute=right.rate_limit_per_minute,
                    expire_time=expire,
                    legal_basis=right.legal_basis,
                    granted_by=actor,
                    grant_time=utcnow(),
                    **values,
                )
            )
            row = (
                uow.session.execute(sa.select(t.access_rights).where(c.id == right_id))
                .mappings()
                .one()
            )
            stored = self._right_pb(row)
            self._audit(
                uow,
                actor,
                "access.grant",
                right.member_code,
                right_id=right_id,
                target={k: v for k, v in values.items() if v},
                legal_basis=right.legal_basis,
            )
            uow.emit(ev.AccessGranted(right=stored, actor_id=actor), subject=right.member_code)
            self._commit(uow)
        return stored

    def revoke(self, actor: str, right_id: str, reason: str) -> None:
        with UnitOfWork(self.engine, source=self.source) as uow:
            c = t.access_rights.c
            row = (
                uow.session.execute(sa.select(t.access_rights).where(c.id == right_id))
                .mappings()
                .first()
            )
            if row is None:
                raise NotFound(
                    f"right {right_id} not found", resource_type="right", resource_name=right_id
                )
            uow.session.execute(sa.delete(t.access_rights).where(c.id == right_id))
            self._audit(
                uow, actor, "access.revoke", row["member_code"], right_id=right_id, reason=reason
            )
            uow.emit(
                ev.AccessRevoked(
                    right_id=right_id, member_code=row["member_code"], reason=reason, actor_id=actor
                ),
                subject=row["member_code"],
            )
            self._commit(uow)

    def list_rights(self, req: pb.ListAccessRightsRequest) -> pb.ListAccessRightsResponse:
        size = 100 if req.page_size <= 0 else min(req.page_size, 1000)
        try:
            offset = int(req.page_token or 0)
        except ValueError:
            raise InvalidArgument("page_token", "is not a token returned by this service") from None
        c = t.access_rights.c
        q = sa.select(t.access_rights).order_by(c.member_code, c.grant_time, c.id)
        if req.member_code:
            q = q.where(c.member_code == req.member_code)
        if req.service:
            q = q.where(c.service == req.service)
        if req.topic:
            q = q.where(c.topic == req.topic)
        if not req.include_expired:
            q = q.where(sa.or_(c.expire_time.is_(None), c.expire_time > utcnow()))
        with self.engine.connect() as conn:
            rows = conn.execute(q.offset(offset).limit(size + 1)).mappings().all()
        nxt = str(offset + size) if len(rows) > size else ""
        return pb.ListAccessRightsResponse(
            rights=[self._right_pb(r) for r in rows[:size]], next_page_token=nxt
        )

    def audit_entries(self, member_code: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(t.audit_log).order_by(t.audit_log.c.id)
        if member_code:
            q = q.where(t.audit_log.c.member_code == member_code)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]


def ensure_active(info: MemberInfo | None, client_id: str) -> MemberInfo:
    """The member of a calling client, or FailedPrecondition-free refusal via PermissionDenied."""
    from lgsp.grpc.errors import PermissionDenied

    if info is None:
        raise PermissionDenied(f"client {client_id or '(none)'} is not a registered LGSP member")
    if not info.active:
        raise PermissionDenied(f"member {info.code} is suspended")
    return info
