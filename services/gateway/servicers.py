"""The gateway's own gRPC services: MemberService, AccessService (role admin),
MessageLogService (admin or auditor), SchemaRegistryService (any valid token), EventService
(member systems, under their topic rights)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from lgsp import events, telemetry
from lgsp.api.gateway.v1 import gateway_pb2 as pb
from lgsp.api.gateway.v1 import gateway_pb2_grpc as pbg
from lgsp.auth import Principal, current_principal, require_role
from lgsp.bus import Bus
from lgsp.grpc.errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from services.gateway import tables as t
from services.gateway.msglog import MessageLog, export_log, format_time, verify_log
from services.gateway.registry import MemberInfo, Registry
from services.gateway.schemas import SchemaRegistry

__all__ = [
    "AccessServicer",
    "EventServicer",
    "MemberServicer",
    "MessageLogServicer",
    "SchemaRegistryServicer",
]


def _trace_id(traceparent: str) -> str:
    parts = traceparent.split("-")
    return parts[1] if len(parts) >= 3 and len(parts[1]) == 32 else ""


def _actor() -> str:
    return require_role("admin").subject


class MemberServicer(pbg.MemberServiceServicer):
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def RegisterMember(self, request: Any, context: Any) -> Any:
        actor = _actor()
        member = await asyncio.to_thread(self.registry.register_member, actor, request.member)
        return pb.RegisterMemberResponse(member=member)

    async def UpdateMember(self, request: Any, context: Any) -> Any:
        actor = _actor()
        member = await asyncio.to_thread(
            self.registry.update_member, actor, request.member, list(request.update_mask.paths)
        )
        return pb.UpdateMemberResponse(member=member)

    async def SuspendMember(self, request: Any, context: Any) -> Any:
        actor = _actor()
        member = await asyncio.to_thread(
            self.registry.set_status,
            actor,
            request.code,
            request.etag,
            pb.MEMBER_STATUS_SUSPENDED,
            request.reason,
        )
        return pb.SuspendMemberResponse(member=member)

    async def ReactivateMember(self, request: Any, context: Any) -> Any:
        actor = _actor()
        member = await asyncio.to_thread(
            self.registry.set_status, actor, request.code, request.etag, pb.MEMBER_STATUS_ACTIVE, ""
        )
        return pb.ReactivateMemberResponse(member=member)

    async def GetMember(self, request: Any, context: Any) -> Any:
        _actor()
        return pb.GetMemberResponse(
            member=await asyncio.to_thread(self.registry.get_member, request.code)
        )

    async def ListMembers(self, request: Any, context: Any) -> Any:
        _actor()
        return await asyncio.to_thread(self.registry.list_members, request)


class AccessServicer(pbg.AccessServiceServicer):
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def GrantAccess(self, request: Any, context: Any) -> Any:
        actor = _actor()
        right = await asyncio.to_thread(self.registry.grant, actor, request.right)
        return pb.GrantAccessResponse(right=right)

    async def RevokeAccess(self, request: Any, context: Any) -> Any:
        actor = _actor()
        await asyncio.to_thread(self.registry.revoke, actor, request.id, request.reason)
        return pb.RevokeAccessResponse()

    async def ListAccessRights(self, request: Any, context: Any) -> Any:
        _actor()
        return await asyncio.to_thread(self.registry.list_rights, request)

    async def CheckAccess(self, request: Any, context: Any) -> Any:
        _actor()
        action = request.WhichOneof("action")
        if action == "method":
            d = self.registry.check_method(request.member_code, request.method)
        elif action == "topic":
            d = self.registry.check_topic(
                request.member_code,
                request.topic.topic,
                request.topic.access,
                request.topic.event_types[0] if request.topic.event_types else "",
            )
        else:
            raise InvalidArgument("action", "a method or a topic is required")
        return pb.CheckAccessResponse(allowed=d.allowed, right_id=d.right_id, reason=d.reason)


def _entry_pb(row: Any, seal: Any | None) -> pb.MessageLogEntry:
    e = pb.MessageLogEntry(
        sequence=row["seq"],
        id=row["id"],
        client_member_code=row["client_member"],
        service_member_code=row["service_member"],
        method=row["method"],
        status_code=row["status_code"],
        duration_ms=row["duration_us"] // 1000,
        duration_us=row["duration_us"],
        trace_id=row["trace_id"],
        request_sha256=row["request_sha256"],
        response_sha256=row["response_sha256"],
        request_size=row["request_size"],
        response_size=row["response_size"],
        previous_hash=row["prev_hash"],
        entry_hash=row["entry_hash"],
        caller_subject=row["caller"],
    )
    e.time.FromJsonString(row["time"])
    if seal is not None:  # the entry that closes a sealed batch carries its signature
        e.signature = bytes.fromhex(seal["signature"])
        e.key_id = seal["key_id"]
    return e


def _filtered(f: pb.MessageLogFilter) -> Any:
    c = t.message_log.c
    q = sa.select(t.message_log)
    if f.HasField("start_time"):
        q = q.where(c.time >= format_time(f.start_time.ToDatetime(UTC)))
    if f.HasField("end_time"):
        q = q.where(c.time < format_time(f.end_time.ToDatetime(UTC)))
    if f.client_member_code:
        q = q.where(c.client_member == f.client_member_code)
    if f.service_member_code:
        q = q.where(c.service_member == f.service_member_code)
    if f.method:
        q = q.where(
            c.method.startswith(f.method) if f.method.endswith("/") else c.method == f.method
        )
    if f.trace_id:
        q = q.where(c.trace_id == f.trace_id)
    if f.errors_only:
        q = q.where(c.status_code != 0)
    return q


class MessageLogServicer(pbg.MessageLogServiceServicer):
    def __init__(self, engine: Engine, msglog: MessageLog) -> None:
        self.engine = engine
        self.msglog = msglog

    async def QueryMessageLog(self, request: Any, context: Any) -> Any:
        require_role(("admin", "auditor"))
        size = 100 if request.page_size <= 0 else min(request.page_size, 1000)
        try:
            after = int(request.page_token or 0)
        except ValueError:
            raise InvalidArgument("page_token", "is not a token returned by this service") from None
        await self.msglog.flush()  # what was called just now is queryable now

        def read() -> pb.QueryMessageLogResponse:
            c = t.message_log.c
            q = _filtered(request.filter).where(c.seq > after).order_by(c.seq).limit(size + 1)
            with self.engine.connect() as conn:
                rows = conn.execute(q).mappings().all()
                seqs = [r["seq"] for r in rows[:size]]
                seals = {
                    s["last_seq"]: s
                    for s in conn.execute(
                        sa.select(t.log_seals).where(t.log_seals.c.last_seq.in_(seqs))
                    ).mappings()
                }
            nxt = str(rows[size - 1]["seq"]) if len(rows) > size else ""
            return pb.QueryMessageLogResponse(
                entries=[_entry_pb(r, seals.get(r["seq"])) for r in rows[:size]],
                next_page_token=nxt,
            )

        return await asyncio.to_thread(read)

    async def VerifyMessageLog(self, request: Any, context: Any) -> Any:
        require_role(("admin", "auditor"))
        await self.msglog.flush(seal=True)
        result = await asyncio.to_thread(
            verify_log,
            self.engine,
            from_seq=request.from_sequence or None,
            to_seq=request.to_sequence or None,
        )
        return pb.VerifyMessageLogResponse(
            valid=result.valid,
            checked_count=result.checked,
            first_invalid_sequence=result.first_bad_seq,
            reason=result.reason,
        )

    async def ExportMessageLog(self, request: Any, context: Any) -> AsyncIterator[Any]:
        require_role(("admin", "auditor"))
        f = request.filter
        if request.format == pb.EXPORT_FORMAT_CSV:
            raise InvalidArgument("format", "only JSONL exports are verifiable; CSV is not offered")
        if any((f.client_member_code, f.service_member_code, f.method, f.trace_id, f.errors_only)):
            raise InvalidArgument(
                "filter", "an export is a time range (start_time, end_time) so it stays verifiable"
            )
        await self.msglog.flush(seal=True)
        start = format_time(f.start_time.ToDatetime(UTC)) if f.HasField("start_time") else None
        end = format_time(f.end_time.ToDatetime(UTC)) if f.HasField("end_time") else None
        buffer = io.StringIO()
        await asyncio.to_thread(export_log, self.engine, buffer, start=start, end=end)
        data = buffer.getvalue().encode()
        for i in range(0, len(data), 1 << 20):
            yield pb.ExportMessageLogResponse(chunk=data[i : i + (1 << 20)])


class SchemaRegistryServicer(pbg.SchemaRegistryServiceServicer):
    def __init__(self, schemas: SchemaRegistry) -> None:
        self.schemas = schemas

    @staticmethod
    def _caller() -> None:
        if current_principal().is_anonymous:
            raise Unauthenticated("authentication required")

    async def GetEventSchema(self, request: Any, context: Any) -> Any:
        self._caller()
        schema = self.schemas.schema(request.type)
        if schema is None:
            raise NotFound(
                f"unknown event type {request.type!r}",
                resource_type="event type",
                resource_name=request.type,
            )
        return pb.GetEventSchemaResponse(schema=schema)

    async def ListEventSchemas(self, request: Any, context: Any) -> Any:
        self._caller()
        size = 100 if request.page_size <= 0 else min(request.page_size, 1000)
        try:
            offset = int(request.page_token or 0)
        except ValueError:
            raise InvalidArgument("page_token", "is not a token returned by this service") from None
        items = self.schemas.list_schemas(request.topic, request.source)
        page = items[offset : offset + size]
        nxt = str(offset + size) if offset + size < len(items) else ""
        return pb.ListEventSchemasResponse(schemas=page, next_page_token=nxt)

    async def ListTopics(self, request: Any, context: Any) -> Any:
        self._caller()
        return pb.ListTopicsResponse(topics=self.schemas.topics())


class EventServicer(pbg.EventServiceServicer):
    """Publish/subscribe for member systems, under their topic rights; each call is logged."""

    def __init__(self, registry: Registry, bus_of: Any, msglog: MessageLog) -> None:
        self.registry = registry
        self._bus_of = bus_of  # callable: the runtime's bus once started
        self.msglog = msglog

    def _member(self) -> tuple[Principal, MemberInfo]:
        p = current_principal()
        if p.is_anonymous:
            raise Unauthenticated("authentication required")
        member = self.registry.member_for_client(p.client_id or "")
        if member is None:
            raise PermissionDenied(f"client {p.client_id} is not a registered LGSP member")
        if not member.active:
            raise PermissionDenied(f"member {member.code} is suspended")
        return p, member

    def _log(
        self,
        method: str,
        p: Principal,
        member: str,
        code: int,
        started: float,
        request: bytes,
        response: bytes | None,
        trace_id: str = "",
    ) -> None:
        self.msglog.append(
            id=str(uuid.uuid4()),
            time=format_time(time.time() - (time.perf_counter() - started)),
            client_member=member,
            service_member="gateway",
            caller=p.subject,
            method=method,
            status_code=code,
            duration_us=int((time.perf_counter() - started) * 1e6),
            trace_id=trace_id,
            request_sha256=hashlib.sha256(request).hexdigest(),
            response_sha256=hashlib.sha256(response).hexdigest() if response is not None else "",
            request_size=len(request),
            response_size=len(response) if response is not None else 0,
        )

    async def Publish(self, request: Any, context: Any) -> Any:
        started = time.perf_counter()
        method = "/lgsp.api.gateway.v1.EventService/Publish"
        p, member = self._member()
        raw = request.SerializeToString()
        env = request.envelope
        # The event carries the publisher's trace: its own, else the call's, else the
        # gateway span's (which the call's traceparent, if any, is the parent of).
        if "traceparent" not in env.trace_context:
            md = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
            carrier = {k: md[k] for k in ("traceparent", "tracestate") if k in md}
            env.trace_context.update(carrier or telemetry.trace_headers())
        trace_id = _trace_id(env.trace_context.get("traceparent", ""))
        try:
            topic = request.topic
            for name in ("id", "type", "subject"):
                if not getattr(env, name):
                    raise InvalidArgument(f"envelope.{name}", "is required")
            try:
                events.payload_of(env)
            except events.MalformedEvent as error:
                raise InvalidArgument("envelope.payload", str(error)) from None
            try:
                own_topic = events.topic_for_type(env.type)
            except ValueError as error:
                raise InvalidArgument("envelope.type", str(error)) from None
            if own_topic != topic:
                raise InvalidArgument(
                    "topic", f"events of type {env.type} go to {own_topic}, not {topic}"
                )
            d = self.registry.check_topic(member.code, topic, pb.TOPIC_ACCESS_PUBLISH, env.type)
            if not d.allowed:
                raise PermissionDenied(
                    f"member {member.code} may not publish to {topic}: {d.reason}"
                )
            env.source = member.code
            bus: Bus = self._bus_of()
            await bus.ensure_topic(topic)
            headers = {k: v.encode() for k, v in events.envelope_headers(env).items()}
            await bus.publish(topic, env.subject, events.encode(env), headers)
        except Exception as error:
            code = getattr(getattr(error, "code", None), "value", (13,))[0]
            self._log(method, p, member.code, code, started, raw, None, trace_id)
            raise
        response = pb.PublishResponse(event_id=env.id)
        self._log(method, p, member.code, 0, started, raw, response.SerializeToString(), trace_id)
        return response

    async def Subscribe(self, request: Any, context: Any) -> AsyncIterator[Any]:
        started = time.perf_counter()
        method = "/lgsp.api.gateway.v1.EventService/Subscribe"
        p, member = self._member()
        raw = request.SerializeToString()
        topic, group = request.topic, request.group or "default"
        d = self.registry.check_topic(member.code, topic, pb.TOPIC_ACCESS_SUBSCRIBE)
        if not d.allowed:
            self._log(method, p, member.code, 7, started, raw, None)
            raise PermissionDenied(f"member {member.code} may not subscribe to {topic}: {d.reason}")
        right_types = next(
            (
                set(r.topic.event_types)
                for r in self.registry.list_rights(
                    pb.ListAccessRightsRequest(member_code=member.code, topic="")
                ).rights
                if r.id == d.right_id
            ),
            set(),
        )
        bus: Bus = self._bus_of()
        await bus.ensure_topic(topic)
        consumer = bus.consumer(f"{member.code}/{group}", [topic])
        sent = 0
        try:
            while True:
                records = await consumer.poll(timeout=0.5, max_records=100)
                for record in records:
                    with contextlib.suppress(events.MalformedEvent):
                        env = events.decode(record.value)
                        if right_types and env.type not in right_types:
                            continue
                        sent += 1
                        yield pb.SubscribeResponse(
                            topic=record.topic,
                            partition=record.partition,
                            offset=record.offset,
                            envelope=env,
                        )
                if records:
                    await consumer.commit()
        finally:
            self._log(method, p, member.code, 1 if sent >= 0 else 0, started, raw, None)
            await consumer.close()
