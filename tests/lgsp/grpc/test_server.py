"""The server bootstrap: health, reflection, limits, error mapping, auth, streaming, tracing."""

from __future__ import annotations

import asyncio
import logging

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lgsp.api.diagnostics.v1 import diagnostics_pb2, diagnostics_pb2_grpc
from lgsp.api.diagnostics.v1.diagnostics_pb2 import EchoRequest
from lgsp.grpc.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    ServiceError,
    Unauthenticated,
    Unavailable,
    to_status,
)
from tests.lgsp.grpc._support import SERVICE, TokenAuthenticator, method

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def test_health_serving_then_not_serving(make_server, client_for) -> None:
    server, _ = await make_server()
    stub = health_pb2_grpc.HealthStub(client_for(server))
    for name in ("", SERVICE, "lgsp.api.diagnostics.v1.DiagnosticsService"):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=name))
        assert reply.status == SERVING, name

    await server.set_serving(SERVICE, False)
    assert (await stub.Check(health_pb2.HealthCheckRequest(service=SERVICE))).status == NOT_SERVING
    assert (await stub.Check(health_pb2.HealthCheckRequest(service=""))).status == SERVING

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_reflection_lists_every_service(make_server, client_for) -> None:
    server, _ = await make_server()
    stub = reflection_pb2_grpc.ServerReflectionStub(client_for(server))
    responses = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = set()
    async for response in responses:
        names |= {s.name for s in response.list_services_response.service}
    assert names == {
        SERVICE,
        "lgsp.api.diagnostics.v1.DiagnosticsService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    assert set(server.service_names) == {SERVICE, "lgsp.api.diagnostics.v1.DiagnosticsService"}


async def test_echo_answers_with_service_name(make_server, client_for) -> None:
    server, _ = await make_server()
    stub = diagnostics_pb2_grpc.DiagnosticsServiceStub(client_for(server))
    reply = await stub.Echo(diagnostics_pb2.EchoRequest(message="xin chào", payload=b"\x00\x01"))
    assert (reply.message, reply.payload, reply.service, reply.caller) == (
        "xin chào",
        b"\x00\x01",
        "test",
        "",
    )


async def test_oversized_request_gets_resource_exhausted(make_server, client_for) -> None:
    server, _ = await make_server(max_message_bytes=64 * 1024)
    stub = diagnostics_pb2_grpc.DiagnosticsServiceStub(client_for(server))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Echo(diagnostics_pb2.EchoRequest(payload=b"x" * (100 * 1024)))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Just under the limit still works.
    reply = await stub.Echo(diagnostics_pb2.EchoRequest(payload=b"x" * (60 * 1024)))
    assert len(reply.payload) == 60 * 1024


async def test_invalid_argument_names_the_field(make_server, client_for) -> None:
    server, _ = await make_server()
    ch = client_for(server)
    call = method(ch, "Fail")(EchoRequest(message="invalid"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "invalid document.subject: must not be empty"
    status = await rpc_status.aio.from_call(call)
    assert status is not None and len(status.details) == 1
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("document.subject", "must not be empty")
    ]

    # Several violations in one BadRequest; the Echo contract's own check uses the same path.
    call = method(ch, "Fail")(EchoRequest(message="invalid-many"))
    with pytest.raises(grpc.aio.AioRpcError):
        await call
    status = await rpc_status.aio.from_call(call)
    status.details[0].Unpack(bad)
    assert [v.field for v in bad.field_violations] == ["agency_code", "year"]

    echo = diagnostics_pb2_grpc.DiagnosticsServiceStub(ch).Echo(
        diagnostics_pb2.EchoRequest(message="đ" * 40_000)  # 80 000 bytes of UTF-8 > 64 KiB
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await echo
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (await rpc_status.aio.from_call(echo)).details[0].Unpack(bad)
    assert bad.field_violations[0].field == "message"


async def test_unexpected_error_is_internal_without_its_text(
    make_server, client_for, spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = await make_server()
    with caplog.at_level(logging.ERROR, logger="lgsp.grpc"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await method(client_for(server), "Fail")(EchoRequest(message="boom"))
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert "hunter2" not in (err.value.details() or "")
    assert "RuntimeError" not in (err.value.details() or "")
    assert "hunter2" not in str(err.value.trailing_metadata())
    server_span = next(s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.SERVER)
    trace_id = format(server_span.context.trace_id, "032x")
    assert err.value.details() == f"internal error (trace_id {trace_id})"
    # The operator finds the cause in the log, under the same trace id.
    logged = [r for r in caplog.records if r.exc_info and "hunter2" in str(r.exc_info[1])]
    assert logged and trace_id in logged[0].getMessage()


async def test_handler_abort_keeps_its_status(make_server, client_for) -> None:
    server, _ = await make_server()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await method(client_for(server), "Fail")(EchoRequest(message="abort"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.details() == "aborted by handler"


async def test_concurrency_limit_is_honoured(make_server, client_for) -> None:
    server, servicer = await make_server(max_concurrent_rpcs=2)
    sleep = method(client_for(server), "Sleep")
    slow = [asyncio.ensure_future(sleep(EchoRequest(message="0.6"))) for _ in range(2)]
    await asyncio.wait_for(servicer.entered.wait(), 5)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await sleep(EchoRequest(message="0"))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert [r.message for r in await asyncio.gather(*slow)] == ["0.6", "0.6"]
    # Capacity is back once they finished.
    assert (await sleep(EchoRequest(message="0"))).message == "0"


async def test_auth_hook_refuses_and_passes_the_principal(make_server, client_for) -> None:
    server, _ = await make_server(authenticator=TokenAuthenticator())
    ch = client_for(server)
    who = method(ch, "WhoAmI")

    cases = {
        None: grpc.StatusCode.UNAUTHENTICATED,
        "Bearer bad": grpc.StatusCode.UNAUTHENTICATED,
        "Bearer lan:specialist": grpc.StatusCode.PERMISSION_DENIED,
        "Bearer crash": grpc.StatusCode.INTERNAL,
    }
    for token, code in cases.items():
        metadata = (("authorization", token),) if token else ()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await who(EchoRequest(), metadata=metadata)
        assert err.value.code() == code, token
        assert "secret internals" not in (err.value.details() or "")

    reply = await who(EchoRequest(), metadata=(("authorization", "Bearer lan:clerk,leader"),))
    assert (reply.caller, reply.message) == ("lan", "clerk,leader")

    # Echo is public: anonymous without a token (even a bad one), the caller with a good one.
    echo = diagnostics_pb2_grpc.DiagnosticsServiceStub(ch).Echo
    assert (await echo(diagnostics_pb2.EchoRequest())).caller == ""
    bad = (("authorization", "Bearer bad"),)
    assert (await echo(diagnostics_pb2.EchoRequest(), metadata=bad)).caller == ""
    good = (("authorization", "Bearer mai:clerk"),)
    assert (await echo(diagnostics_pb2.EchoRequest(), metadata=good)).caller == "mai"
    # Health stays reachable for probes that carry no token.
    health = health_pb2_grpc.HealthStub(ch)
    assert (await health.Check(health_pb2.HealthCheckRequest())).status == SERVING


async def test_streaming_methods_work_through_interceptors(make_server, client_for) -> None:
    # A real authenticator, so the auth layer wraps the streams too.
    server, _ = await make_server(authenticator=TokenAuthenticator())
    ch = client_for(server)
    md = (("authorization", "Bearer an:clerk"),)

    count = method(ch, "Count", "unary_stream")
    replies = [r async for r in count(EchoRequest(message="3"), metadata=md)]
    assert [(r.message, r.caller) for r in replies] == [("0", "an"), ("1", "an"), ("2", "an")]

    written = [
        r.message
        async for r in method(ch, "CountWrite", "unary_stream")(
            EchoRequest(message="2"), metadata=md
        )
    ]
    assert written == ["0", "1"]

    async def parts():
        for part in ("Một ", "cửa"):
            yield EchoRequest(message=part)

    joined = await method(ch, "Join", "stream_unary")(parts(), metadata=md)
    assert (joined.message, joined.caller) == ("Một cửa", "an")

    chat = [r.message async for r in method(ch, "Chat", "stream_stream")(parts(), metadata=md)]
    assert chat == ["MỘT ", "CỬA"]

    # An error after some items: the items arrive, then the mapped status.
    got: list[str] = []
    call = count(EchoRequest(message="2:fail"), metadata=md)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for r in call:
            got.append(r.message)
    assert got == ["0", "1"]
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    with pytest.raises(grpc.aio.AioRpcError) as err:
        _ = [r async for r in count(EchoRequest(message="1"))]
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_trace_propagates_from_client_to_server(
    make_server, client_for, spans: InMemorySpanExporter
) -> None:
    server, _ = await make_server()
    stub = diagnostics_pb2_grpc.DiagnosticsServiceStub(client_for(server))
    with trace.get_tracer("test").start_as_current_span("operator request") as root:
        await stub.Echo(diagnostics_pb2.EchoRequest(message="hi"))
    finished = spans.get_finished_spans()
    client = next(s for s in finished if s.kind == trace.SpanKind.CLIENT)
    srv = next(s for s in finished if s.kind == trace.SpanKind.SERVER)
    trace_id = root.get_span_context().trace_id
    assert client.context.trace_id == srv.context.trace_id == trace_id
    assert client.parent is not None and client.parent.span_id == root.get_span_context().span_id
    assert srv.parent is not None and srv.parent.span_id == client.context.span_id
    assert srv.parent.is_remote
    assert srv.name == "lgsp.api.diagnostics.v1.DiagnosticsService/Echo"
    assert srv.attributes["rpc.grpc.status_code"] == 0
    assert srv.resource.attributes["service.name"] == "lgsp-test"


async def test_access_log_line(make_server, client_for, caplog: pytest.LogCaptureFixture) -> None:
    server, _ = await make_server(authenticator=TokenAuthenticator())
    md = (("authorization", "Bearer hoa:clerk"),)
    with caplog.at_level(logging.INFO, logger="lgsp.access"):
        await method(client_for(server), "WhoAmI")(EchoRequest(), metadata=md)
        with pytest.raises(grpc.aio.AioRpcError):
            await method(client_for(server), "Fail")(EchoRequest(message="invalid"), metadata=md)
    records = [r for r in caplog.records if r.name == "lgsp.access"]
    by_method = {r.grpc_method: r for r in records}
    ok = by_method[f"/{SERVICE}/WhoAmI"]
    assert (ok.grpc_code, ok.caller) == ("OK", "hoa")
    assert ok.duration_ms >= 0 and ok.peer.startswith("ipv4:127.0.0.1:")
    failed = by_method[f"/{SERVICE}/Fail"]
    assert failed.grpc_code == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (NotFound("x"), grpc.StatusCode.NOT_FOUND),
        (AlreadyExists("x"), grpc.StatusCode.ALREADY_EXISTS),
        (FailedPrecondition("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (Aborted("x"), grpc.StatusCode.ABORTED),
        (PermissionDenied(), grpc.StatusCode.PERMISSION_DENIED),
        (Unauthenticated(), grpc.StatusCode.UNAUTHENTICATED),
        (ResourceExhausted("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (Unavailable("x"), grpc.StatusCode.UNAVAILABLE),
        (InvalidArgument("f", "d"), grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_error_classes_map_to_codes(error: ServiceError, code: grpc.StatusCode) -> None:
    got, _, trailers = to_status(error)
    assert got == code
    assert status_pb2.Status.FromString(trailers[0][1]).code == code.value[0]


def test_errors_carry_rich_details() -> None:
    _, message, trailers = to_status(
        NotFound("no such dossier", resource_type="dossier", resource_name="H27.22-250701-0001")
    )
    assert message == "no such dossier"
    info = error_details_pb2.ResourceInfo()
    assert status_pb2.Status.FromString(trailers[0][1]).details[0].Unpack(info)
    assert (info.resource_type, info.resource_name) == ("dossier", "H27.22-250701-0001")

    _, _, trailers = to_status(Unavailable("index rebuilding", retry_after=2.5))
    retry = error_details_pb2.RetryInfo()
    assert status_pb2.Status.FromString(trailers[0][1]).details[0].Unpack(retry)
    assert retry.retry_delay.ToMilliseconds() == 2500
