"""The gateway's pass-through with real tokens: rights, refusals, streaming, deadlines, trace
context, and every call in the message log."""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio
import pytest
from grpc_status import rpc_status

from lgsp.api.documents.v1 import documents_pb2 as dpb
from lgsp.api.documents.v1 import documents_pb2_grpc as dpbg
from lgsp.api.identity.v1 import identity_pb2 as ipb
from lgsp.api.identity.v1 import identity_pb2_grpc as ipbg
from tests.services.gateway.conftest import DVC, MOTCUA, Platform, bearer

pytestmark = pytest.mark.asyncio(loop_scope="module")

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def _entries(platform: Platform) -> list[dict]:
    await platform.gateway.msglog.flush()
    import sqlalchemy as sa

    from services.gateway import tables as t

    with platform.runtime.engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(sa.select(t.message_log).order_by(t.message_log.c.seq)).mappings()
        ]


async def test_member_call_is_forwarded_with_token_trace_and_deadline(platform: Platform) -> None:
    token = await platform.client_token("motcua-thanhsen")
    async with grpc.aio.insecure_channel(platform.address) as ch:
        call = dpbg.DocumentServiceStub(ch).GetDocument(
            dpb.GetDocumentRequest(id="doc-1"),
            metadata=(*bearer(token), ("traceparent", TRACEPARENT), ("x-request-id", "r-1")),
            timeout=5,
        )
        response = await call
        trailers = dict(await call.trailing_metadata())
    assert response.document.id == "doc-1"
    seen = platform.seen.metadata[-1]
    # The upstream checked the same token itself and saw the caller's trace context unchanged.
    assert seen["traceparent"] == TRACEPARENT
    assert seen["x-request-id"] == "r-1"
    assert seen["x-lgsp-client-member"] == MOTCUA
    assert seen["x-lgsp-message-id"] == trailers["x-lgsp-message-id"]
    remaining = platform.seen.time_remaining[-1]
    assert remaining is not None and 3 < remaining <= 5
    entry = next(e for e in await _entries(platform) if e["id"] == trailers["x-lgsp-message-id"])
    assert entry["client_member"] == MOTCUA
    assert entry["caller"] and entry["caller"] == platform.seen.callers[-1]
    assert entry["method"] == "/lgsp.api.documents.v1.DocumentService/GetDocument"
    assert entry["status_code"] == 0
    assert entry["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    import hashlib

    body = dpb.GetDocumentRequest(id="doc-1").SerializeToString()
    assert entry["request_sha256"] == hashlib.sha256(body).hexdigest()
    assert entry["request_size"] == len(body)
    assert entry["response_size"] == len(response.SerializeToString())


async def test_refusals_are_clear_logged_and_others_keep_being_served(platform: Platform) -> None:
    motcua = await platform.client_token("motcua-thanhsen")
    dvc = await platform.client_token("dvc-hatinh")
    stranger = await platform.client_token("documents")  # a real client, not a member
    before = len(await _entries(platform))
    async with grpc.aio.insecure_channel(platform.address) as ch:
        docs = dpbg.DocumentServiceStub(ch)
        req = dpb.GetDocumentRequest(id="x")
        cases = [
            ((), grpc.StatusCode.UNAUTHENTICATED, "missing bearer token"),
            (bearer("not-a-jwt"), grpc.StatusCode.UNAUTHENTICATED, "malformed token"),
            (bearer(motcua[:-4] + "AAAA"), grpc.StatusCode.UNAUTHENTICATED, "signature"),
            (bearer(stranger), grpc.StatusCode.PERMISSION_DENIED, "not a registered LGSP member"),
            (bearer(dvc), grpc.StatusCode.PERMISSION_DENIED, f"member {DVC} may not call"),
        ]
        for metadata, code, text in cases:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await docs.GetDocument(req, metadata=metadata)
            assert err.value.code() == code, (text, err.value.details())
            assert text in (err.value.details() or "")
        # dvc's one granted method goes through.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await docs.ListDocuments(dpb.ListDocumentsRequest(), metadata=bearer(dvc))
        # Forwarded: the stand-in upstream has no ListDocuments (its platform layer answers
        # INTERNAL), not refused by the gateway.
        assert err.value.code() == grpc.StatusCode.INTERNAL
        # The member with the right is still served.
        assert (await docs.GetDocument(req, metadata=bearer(motcua))).document.id == "x"
    entries = (await _entries(platform))[before:]
    codes = [e["status_code"] for e in entries]
    assert codes == [16, 16, 16, 7, 7, 13, 0]
    # Who called is known even when refused: the token's subject (a service account).
    assert entries[3]["client_member"] == "" and entries[3]["caller"]
    assert entries[0]["caller"] == "" and entries[0]["request_size"] == len(req.SerializeToString())
    assert entries[4]["client_member"] == DVC


async def test_upstream_errors_and_unknown_methods(platform: Platform) -> None:
    token = await platform.client_token("motcua-thanhsen")
    async with grpc.aio.insecure_channel(platform.address) as ch:
        docs = dpbg.DocumentServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await docs.GetDocument(dpb.GetDocumentRequest(id="missing"), metadata=bearer(token))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        status = rpc_status.from_call(err.value)  # rich details pass through
        assert status is not None and status.details
        # Deadline propagated: the upstream sleeps 2 s, the caller allows 0.3 s.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await docs.GetDocument(
                dpb.GetDocumentRequest(id="slow"), metadata=bearer(token), timeout=0.3
            )
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        for method, code, text in [
            ("/lgsp.api.nowhere.v1.X/Y", grpc.StatusCode.UNIMPLEMENTED, "has no route"),
            ("/lgsp.api.documents.v1.DocumentService/", grpc.StatusCode.UNIMPLEMENTED, ""),
            ("/foo.Bar/Baz", grpc.StatusCode.UNIMPLEMENTED, ""),
        ]:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await ch.unary_unary(method)(b"", metadata=bearer(token))
            assert err.value.code() == code
            assert text in (err.value.details() or "")
        # Malformed request bytes for a known method are refused before forwarding.
        calls = len(platform.seen.metadata)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await ch.unary_unary("/lgsp.api.documents.v1.DocumentService/GetDocument")(
                b"\xff\xff\xff", metadata=bearer(token)
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid lgsp.api.documents.v1.GetDocumentRequest" in err.value.details()
        assert len(platform.seen.metadata) == calls


async def test_streams_of_every_shape(platform: Platform) -> None:
    token = await platform.client_token("motcua-thanhsen")
    async with grpc.aio.insecure_channel(platform.address) as ch:
        docs = dpbg.DocumentServiceStub(ch)
        chunks = [
            r
            async for r in docs.DownloadAttachment(
                dpb.DownloadAttachmentRequest(document_id="d"), metadata=bearer(token)
            )
        ]
        assert [c.chunk[:1] for c in chunks] == [b"\x00", b"\x01", b"\x02"]

        async def parts():
            for _ in range(4):
                yield dpb.UploadAttachmentRequest(chunk=b"a" * 500)

        uploaded = await docs.UploadAttachment(parts(), metadata=bearer(token))
        assert uploaded.attachment.size_bytes == 2000
        chat = ch.stream_stream("/lgsp.api.documents.v1.DocumentService/Chat")

        async def words():
            for w in (b"abc", b"xyz"):
                yield w

        assert [m async for m in chat(words(), metadata=bearer(token))] == [b"cba", b"zyx"]
    entries = (await _entries(platform))[-3:]
    assert [e["method"].rsplit("/", 1)[1] for e in entries] == [
        "DownloadAttachment",
        "UploadAttachment",
        "Chat",
    ]
    assert all(e["status_code"] == 0 for e in entries)
    assert entries[0]["response_size"] == 3 * len(
        dpb.DownloadAttachmentResponse(chunk=b"\x00" * 1000).SerializeToString()
    )
    assert entries[2]["request_size"] == 6 and entries[2]["response_size"] == 6


async def test_user_token_from_member_frontend_and_real_identity_upstream(
    platform: Platform,
) -> None:
    """A clerk signed in at the member's frontend (azp = the member's client) calls identity."""
    import lgsp.api.gateway.v1.gateway_pb2 as gpb
    from tests.services.gateway.conftest import seed_members  # noqa: F401 - documents the setup

    reg = platform.gateway.registry
    await asyncio.to_thread(
        reg.grant,
        "test",
        gpb.AccessRight(
            member_code=MOTCUA,
            service=gpb.ServiceTarget(
                service="lgsp.api.identity.v1.IdentityService", methods=["WhoAmI"]
            ),
        ),
    )
    user = await platform.user_token("thaoln.ubnd", client_id="motcua-thanhsen")
    async with grpc.aio.insecure_channel(platform.address) as ch:
        me = await ipbg.IdentityServiceStub(ch).WhoAmI(ipb.WhoAmIRequest(), metadata=bearer(user))
    assert "thaoln.ubnd" in str(me)
    entry = (await _entries(platform))[-1]
    assert entry["client_member"] == MOTCUA
    assert entry["service_member"] == "identity"
    assert entry["caller"] != "client:motcua-thanhsen"


async def test_upstream_down_is_unavailable(platform: Platform) -> None:
    import lgsp.api.gateway.v1.gateway_pb2 as gpb
    from lgsp.api.mail.v1 import mail_pb2

    await asyncio.to_thread(
        platform.gateway.registry.grant,
        "test",
        gpb.AccessRight(
            member_code=MOTCUA, service=gpb.ServiceTarget(service="lgsp.api.mail.v1.*")
        ),
    )
    token = await platform.client_token("motcua-thanhsen")
    svc = mail_pb2.DESCRIPTOR.services_by_name[next(iter(mail_pb2.DESCRIPTOR.services_by_name))]
    method = next(m for m in svc.methods if not m.client_streaming and not m.server_streaming)
    async with grpc.aio.insecure_channel(platform.address) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await ch.unary_unary(f"/{svc.full_name}/{method.name}")(
                b"", metadata=bearer(token), timeout=5
            )
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "upstream mail unavailable" in err.value.details()


async def test_a_restarted_local_service_is_reached_through_the_gateway_at_once(
    platform: Platform,
) -> None:
    """gRPC's default reconnect backoff would keep a restarted service out of reach for 1-2.5 s
    after it is back; local peers are retried every 0.1-0.5 s."""
    import time

    import lgsp.api.gateway.v1.gateway_pb2 as gpb
    from lgsp.api.search.v1 import search_pb2, search_pb2_grpc
    from lgsp.grpc import build_server

    await asyncio.to_thread(
        platform.gateway.registry.grant,
        "test",
        gpb.AccessRight(
            member_code=MOTCUA, service=gpb.ServiceTarget(service="lgsp.api.search.v1.*")
        ),
    )
    token = await platform.client_token("motcua-thanhsen")

    class Search(search_pb2_grpc.SearchServiceServicer):
        async def Search(self, request: object, context: object) -> search_pb2.SearchResponse:
            return search_pb2.SearchResponse(total_size=7)

    async with grpc.aio.insecure_channel(platform.address) as ch:
        stub = search_pb2_grpc.SearchServiceStub(ch)

        async def call() -> int:
            reply = await stub.Search(search_pb2.SearchRequest(), metadata=bearer(token), timeout=5)
            return int(reply.total_size)

        # Down: the gateway's channel fails its connection attempts and backs off.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call()
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        await asyncio.sleep(4.0)
        host, _, port = platform.spare.rpartition(":")
        server = build_server(
            "search",
            servicers=[(search_pb2_grpc.add_SearchServiceServicer_to_server, Search())],
            host=host,
            port=int(port),
        )
        await server.start()
        back = time.monotonic()
        try:
            while True:
                try:
                    assert await call() == 7
                    break
                except grpc.aio.AioRpcError as e:
                    assert e.code() == grpc.StatusCode.UNAVAILABLE
                    assert time.monotonic() - back < 5
                    await asyncio.sleep(0.02)
            assert time.monotonic() - back < 0.8
        finally:
            await server.stop(0)
