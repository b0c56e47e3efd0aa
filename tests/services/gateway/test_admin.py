"""The gateway's own services with real tokens: members and rights (admin only, audited, with
events), limits answering RESOURCE_EXHAUSTED, the message log service, the schema registry and
events published and consumed through the LGSP under topic rights."""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio
import pytest
import sqlalchemy as sa
from google.protobuf import descriptor_pb2, field_mask_pb2
from grpc_status import rpc_status

from lgsp import events
from lgsp.api.documents.v1 import documents_pb2 as dpb
from lgsp.api.documents.v1 import documents_pb2_grpc as dpbg
from lgsp.api.gateway.v1 import gateway_pb2 as gpb
from lgsp.api.gateway.v1 import gateway_pb2_grpc as gpbg
from lgsp.db import outbox_table
from services.gateway import tables as t
from tests.services.gateway.conftest import ADMIN_USER, AUDITOR_USER, MOTCUA, Platform, bearer

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_members_and_rights_need_admin_and_are_audited(platform: Platform) -> None:
    admin = await platform.user_token(ADMIN_USER)
    member_token = await platform.client_token("motcua-thanhsen")
    code = "000.00.12.H27:qlvb"
    async with grpc.aio.insecure_channel(platform.address) as ch:
        members = gpbg.MemberServiceStub(ch)
        access = gpbg.AccessServiceStub(ch)
        new = gpb.Member(
            code=code,
            name="Quản lý văn bản Sở Tư pháp",
            agency_code="000.00.12.H27",
            kind=gpb.MEMBER_KIND_PROVINCIAL_SYSTEM,
            client_id="qlvb-stp",
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await members.RegisterMember(gpb.RegisterMemberRequest(member=new))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await members.RegisterMember(
                gpb.RegisterMemberRequest(member=new), metadata=bearer(member_token)
            )
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        bad = gpb.Member(code="nope", name="x", agency_code="000.00.12.H27", kind=2, client_id="c")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await members.RegisterMember(
                gpb.RegisterMemberRequest(member=bad), metadata=bearer(admin)
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "member.code" in err.value.details()
        stored = (
            await members.RegisterMember(
                gpb.RegisterMemberRequest(member=new), metadata=bearer(admin)
            )
        ).member
        assert stored.status == gpb.MEMBER_STATUS_ACTIVE and stored.etag == "v1"
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await members.RegisterMember(
                gpb.RegisterMemberRequest(member=new), metadata=bearer(admin)
            )
        assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
        updated = (
            await members.UpdateMember(
                gpb.UpdateMemberRequest(
                    member=gpb.Member(code=code, etag="v1", rate_limit_per_minute=600),
                    update_mask=field_mask_pb2.FieldMask(paths=["rate_limit_per_minute"]),
                ),
                metadata=bearer(admin),
            )
        ).member
        assert updated.rate_limit_per_minute == 600 and updated.etag == "v2"
        with pytest.raises(grpc.aio.AioRpcError) as err:  # stale etag
            await members.SuspendMember(
                gpb.SuspendMemberRequest(code=code, etag="v1"), metadata=bearer(admin)
            )
        assert err.value.code() == grpc.StatusCode.ABORTED
        right = (
            await access.GrantAccess(
                gpb.GrantAccessRequest(
                    right=gpb.AccessRight(
                        member_code=code,
                        service=gpb.ServiceTarget(
                            service="lgsp.api.documents.v1.DocumentService", methods=["GetDocument"]
                        ),
                        legal_basis="QĐ 123/QĐ-UBND",
                    )
                ),
                metadata=bearer(admin),
            )
        ).right
        method = "/lgsp.api.documents.v1.DocumentService/GetDocument"
        check = await access.CheckAccess(
            gpb.CheckAccessRequest(member_code=code, method=method), metadata=bearer(admin)
        )
        assert check.allowed and check.right_id == right.id
        # Publishing is granted on one exact topic, not a pattern.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await access.GrantAccess(
                gpb.GrantAccessRequest(
                    right=gpb.AccessRight(
                        member_code=code,
                        topic=gpb.TopicTarget(topic="lgsp.*", access=gpb.TOPIC_ACCESS_PUBLISH),
                    )
                ),
                metadata=bearer(admin),
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        await access.RevokeAccess(
            gpb.RevokeAccessRequest(id=right.id, reason="agreement ended"), metadata=bearer(admin)
        )
        check = await access.CheckAccess(
            gpb.CheckAccessRequest(member_code=code, method=method), metadata=bearer(admin)
        )
        assert not check.allowed and check.reason == "no right"
        await members.SuspendMember(
            gpb.SuspendMemberRequest(code=code, reason="test"), metadata=bearer(admin)
        )
        listed = await members.ListMembers(
            gpb.ListMembersRequest(status=gpb.MEMBER_STATUS_SUSPENDED), metadata=bearer(admin)
        )
        assert [m.code for m in listed.members] == [code]
    audit = platform.gateway.registry.audit_entries(code)
    assert [a["action"] for a in audit] == [
        "member.register",
        "member.update",
        "access.grant",
        "access.revoke",
        "member.suspend",
    ]
    assert all(a["actor"] for a in audit)
    with platform.runtime.engine.connect() as conn:
        types = (
            conn.execute(sa.select(outbox_table.c.event_type).where(outbox_table.c.key == code))
            .scalars()
            .all()
        )
    assert types == [
        "lgsp.api.gateway.v1.MemberRegistered",
        "lgsp.api.gateway.v1.MemberUpdated",
        "lgsp.api.gateway.v1.AccessGranted",
        "lgsp.api.gateway.v1.AccessRevoked",
        "lgsp.api.gateway.v1.MemberStatusChanged",
    ]


async def test_flood_beyond_rate_limit_is_refused_and_others_served(platform: Platform) -> None:
    reg = platform.gateway.registry
    # A tight limit for motcua only: 60/min, burst 1 s worth = 1 call.
    await asyncio.to_thread(
        reg.update_member,
        "test",
        gpb.Member(code=MOTCUA, rate_limit_per_minute=60),
        ["rate_limit_per_minute"],
    )
    motcua = await platform.client_token("motcua-thanhsen")
    admin_req = gpb.GetMemberRequest(code=MOTCUA)
    admin = await platform.user_token(ADMIN_USER)
    try:
        async with grpc.aio.insecure_channel(platform.address) as ch:
            docs = dpbg.DocumentServiceStub(ch)
            results = await asyncio.gather(
                *(
                    docs.GetDocument(dpb.GetDocumentRequest(id="f"), metadata=bearer(motcua))
                    for _ in range(20)
                ),
                return_exceptions=True,
            )
            refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
            assert len(refused) >= 18
            error = refused[0]
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "rate limit of member" in error.details() and "60 calls per minute" in (
                error.details()
            )
            assert int(dict(error.trailing_metadata())["retry-after-ms"]) > 0
            status = rpc_status.from_call(error)
            assert status is not None and status.details[0].type_url.endswith("RetryInfo")
            # The gateway keeps serving everyone else.
            member = await gpbg.MemberServiceStub(ch).GetMember(admin_req, metadata=bearer(admin))
            assert member.member.code == MOTCUA
    finally:
        await asyncio.to_thread(
            reg.update_member,
            "test",
            gpb.Member(code=MOTCUA, rate_limit_per_minute=0),
            ["rate_limit_per_minute"],
        )


async def test_concurrency_limit(platform: Platform) -> None:
    limiter = platform.gateway.limiter
    saved = limiter.max_concurrent
    limiter.max_concurrent = 2
    motcua = await platform.client_token("motcua-thanhsen")
    try:
        async with grpc.aio.insecure_channel(platform.address) as ch:
            docs = dpbg.DocumentServiceStub(ch)
            slow = [
                asyncio.ensure_future(
                    docs.GetDocument(dpb.GetDocumentRequest(id="slow"), metadata=bearer(motcua))
                )
                for _ in range(2)
            ]
            await asyncio.sleep(0.3)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await docs.GetDocument(dpb.GetDocumentRequest(id="x"), metadata=bearer(motcua))
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "concurrency limit" in err.value.details()
            assert all(r.document.id == "slow" for r in await asyncio.gather(*slow))
            assert limiter.in_flight(MOTCUA) == 0
    finally:
        limiter.max_concurrent = saved


async def test_message_log_service_for_auditors(platform: Platform) -> None:
    auditor = await platform.user_token(AUDITOR_USER)
    member = await platform.client_token("motcua-thanhsen")
    async with grpc.aio.insecure_channel(platform.address) as ch:
        logs = gpbg.MessageLogServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await logs.VerifyMessageLog(gpb.VerifyMessageLogRequest(), metadata=bearer(member))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        verdict = await logs.VerifyMessageLog(
            gpb.VerifyMessageLogRequest(), metadata=bearer(auditor)
        )
        assert verdict.valid and verdict.checked_count == platform.gateway.msglog.appended
        page = await logs.QueryMessageLog(
            gpb.QueryMessageLogRequest(
                filter=gpb.MessageLogFilter(client_member_code=MOTCUA, errors_only=True)
            ),
            metadata=bearer(auditor),
        )
        assert page.entries and all(e.status_code != 0 for e in page.entries)
        assert any(
            e.signature
            for e in (
                await logs.QueryMessageLog(
                    gpb.QueryMessageLogRequest(page_size=1000), metadata=bearer(auditor)
                )
            ).entries
        )
        chunks = [
            c.chunk
            async for c in logs.ExportMessageLog(
                gpb.ExportMessageLogRequest(), metadata=bearer(auditor)
            )
        ]
    from services.gateway.msglog import verify_export

    result = verify_export(b"".join(chunks).decode().splitlines())
    assert result.valid and result.checked == verdict.checked_count


async def test_schema_registry(platform: Platform) -> None:
    token = await platform.client_token("motcua-thanhsen")
    async with grpc.aio.insecure_channel(platform.address) as ch:
        schemas = gpbg.SchemaRegistryServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await schemas.ListTopics(gpb.ListTopicsRequest())
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        topics = await schemas.ListTopics(gpb.ListTopicsRequest(), metadata=bearer(token))
        by_name = {t.name: t for t in topics.topics}
        assert "lgsp.api.gateway.v1.AccessGranted" in by_name["lgsp.gateway.v1"].event_types
        assert "lgsp.identity.v1" in by_name
        schema = (
            await schemas.GetEventSchema(
                gpb.GetEventSchemaRequest(type="lgsp.api.gateway.v1.AccessGranted"),
                metadata=bearer(token),
            )
        ).schema
        assert schema.topic == "lgsp.gateway.v1" and len(schema.fingerprint) == 64
        # The descriptor set alone decodes the payload, without generated code.
        from google.protobuf import descriptor_pool, message_factory

        fds = descriptor_pb2.FileDescriptorSet.FromString(schema.file_descriptor_set)
        pool = descriptor_pool.DescriptorPool()
        for f in fds.file:
            pool.Add(f)
        cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(schema.type))
        payload = gpb.AccessRight(id="r1", member_code=MOTCUA)
        from lgsp.api.gateway.v1 import events_pb2

        decoded = cls.FromString(events_pb2.AccessGranted(right=payload).SerializeToString())
        assert decoded.right.member_code == MOTCUA
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await schemas.GetEventSchema(
                gpb.GetEventSchemaRequest(type="lgsp.api.x.v1.Nope"), metadata=bearer(token)
            )
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_events_through_the_lgsp_under_topic_rights(platform: Platform) -> None:
    reg = platform.gateway.registry
    dvc = await platform.client_token("dvc-hatinh")
    motcua = await platform.client_token("motcua-thanhsen")
    # motcua publishes on its own area's topic, dvc subscribes to it.
    area_topic = "lgsp.motcua_thanhsen.v1"
    await asyncio.to_thread(
        reg.grant,
        "test",
        gpb.AccessRight(
            member_code=MOTCUA,
            topic=gpb.TopicTarget(topic="lgsp.gateway.v1", access=gpb.TOPIC_ACCESS_SUBSCRIBE),
        ),
    )
    payload = gpb.Member(code="x")
    envelope = events.make_envelope(payload, source="ignored", subject="s1")
    async with grpc.aio.insecure_channel(platform.address) as ch:
        ev = gpbg.EventServiceStub(ch)
        # The envelope's type must belong to the topic; and the right must exist.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await ev.Publish(
                gpb.PublishRequest(topic=area_topic, envelope=envelope), metadata=bearer(motcua)
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await ev.Publish(
                gpb.PublishRequest(topic="lgsp.gateway.v1", envelope=envelope),
                metadata=bearer(motcua),
            )
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # dvc has no subscribe right on lgsp.gateway.v1.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in ev.Subscribe(
                gpb.SubscribeRequest(topic="lgsp.gateway.v1", group="g"), metadata=bearer(dvc)
            ):
                break
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # motcua may subscribe: it reads the gateway's own events (relayed from the outbox).
        platform.runtime.after_commit()
        got = []
        stream = ev.Subscribe(
            gpb.SubscribeRequest(topic="lgsp.gateway.v1", group="audit"), metadata=bearer(motcua)
        )
        async for item in stream:
            got.append(item.envelope.type)
            if "lgsp.api.gateway.v1.AccessGranted" in got:
                break
        stream.cancel()
    assert got[0] == "lgsp.api.gateway.v1.MemberRegistered"


async def test_member_publishes_a_dossier_event_a_consumer_receives_it(platform: Platform) -> None:
    """A district one-stop desk granted PUBLISH on lgsp.dossiers.v1 files DossierSubmitted
    through the gateway; a consumer of the topic gets it with the caller's trace context."""
    from lgsp.api.dossiers.v1 import dossiers_pb2, events_pb2
    from lgsp.grpc.errors import InvalidArgument
    from tests.services.gateway.conftest import DVC

    reg = platform.gateway.registry
    topic = "lgsp.dossiers.v1"
    # Rights: an exact topic, never the gateway's own, types only of the topic's package.
    for bad in (
        gpb.TopicTarget(topic="lgsp.gateway.v1", access=gpb.TOPIC_ACCESS_PUBLISH),
        gpb.TopicTarget(topic="lgsp.dossiers.*", access=gpb.TOPIC_ACCESS_PUBLISH),
        gpb.TopicTarget(
            topic=topic,
            access=gpb.TOPIC_ACCESS_PUBLISH,
            event_types=["lgsp.api.documents.v1.DocumentIssued"],
        ),
    ):
        with pytest.raises(InvalidArgument):
            await asyncio.to_thread(
                reg.grant, "test", gpb.AccessRight(member_code=MOTCUA, topic=bad)
            )
    await asyncio.to_thread(
        reg.grant,
        "test",
        gpb.AccessRight(
            member_code=MOTCUA,
            topic=gpb.TopicTarget(
                topic=topic,
                access=gpb.TOPIC_ACCESS_PUBLISH,
                event_types=["lgsp.api.dossiers.v1.DossierSubmitted"],
            ),
            legal_basis="QĐ 45/QĐ-UBND liên thông một cửa",
        ),
    )
    bus = platform.runtime.bus
    assert bus is not None
    await bus.ensure_topic(topic)
    consumer = bus.consumer("test-dossiers-consumer", [topic])
    motcua = await platform.client_token("motcua-thanhsen")
    dvc = await platform.client_token("dvc-hatinh")
    submitted = events_pb2.DossierSubmitted(
        dossier=dossiers_pb2.Dossier(
            id="d-1", receipt_code="000.00.61.H27-250703-0042", agency_code="000.00.61.H27"
        ),
        actor_id="client:motcua-thanhsen",
    )
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    envelope = events.make_envelope(
        submitted, source="ignored", subject="000.00.61.H27-250703-0042", trace_context={}
    )
    try:
        async with grpc.aio.insecure_channel(platform.address) as ch:
            ev = gpbg.EventServiceStub(ch)
            response = await ev.Publish(
                gpb.PublishRequest(topic=topic, envelope=envelope),
                metadata=(*bearer(motcua), ("traceparent", traceparent)),
            )
            assert response.event_id == envelope.id
            # No right: refused.
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await ev.Publish(
                    gpb.PublishRequest(topic=topic, envelope=envelope), metadata=bearer(dvc)
                )
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert f"member {DVC} may not publish to {topic}" in (err.value.details() or "")
            # A type of another package on this topic: refused.
            issued = events.make_envelope(
                dpb.Document(id="x"), source="x", subject="x", trace_context={}
            )
            issued.type = "lgsp.api.documents.v1.DocumentIssued"
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await ev.Publish(
                    gpb.PublishRequest(topic=topic, envelope=issued), metadata=bearer(motcua)
                )
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            # A type of the package the right does not list: refused.
            changed = events.make_envelope(
                events_pb2.DossierStatusChanged(dossier_id="d-1"),
                source="x",
                subject="d-1",
                trace_context={},
            )
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await ev.Publish(
                    gpb.PublishRequest(topic=topic, envelope=changed), metadata=bearer(motcua)
                )
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        received = None
        for _ in range(50):
            for record in await consumer.poll(timeout=0.2, max_records=100):
                env = events.decode(record.value)
                if env.id == envelope.id:
                    received = (env, record.headers)
            if received:
                break
        assert received is not None, "the consumer did not receive the event"
        env, headers = received
        assert env.type == "lgsp.api.dossiers.v1.DossierSubmitted"
        assert env.source == MOTCUA  # set by the gateway, whatever the publisher wrote
        assert env.trace_context["traceparent"] == traceparent
        assert headers["traceparent"] == traceparent.encode()
        payload = events.payload_of(env)
        assert isinstance(payload, events_pb2.DossierSubmitted)
        assert payload.dossier.receipt_code == "000.00.61.H27-250703-0042"
    finally:
        await consumer.close()
    await platform.gateway.msglog.flush()
    with platform.runtime.engine.connect() as conn:
        logged = conn.execute(
            sa.select(
                t.message_log.c.client_member,
                t.message_log.c.status_code,
                t.message_log.c.trace_id,
            )
            .where(t.message_log.c.method == "/lgsp.api.gateway.v1.EventService/Publish")
            .order_by(t.message_log.c.seq.desc())
            .limit(4)
        ).all()
    rows = [tuple(r) for r in reversed(logged)]
    assert rows[0] == (MOTCUA, 0, traceparent.split("-")[1])
    assert [r[1] for r in rows] == [0, 7, 3, 7]
