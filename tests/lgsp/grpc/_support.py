"""A test service with every RPC shape, plus helpers to call it.

It reuses the diagnostics messages so no extra proto is needed; the service name
`lgsp.test.v1.TestService` is registered through a generic handler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc
import grpc.aio
from opentelemetry import trace

from lgsp.api.diagnostics.v1.diagnostics_pb2 import EchoRequest, EchoResponse
from lgsp.auth import Principal, current_principal
from lgsp.grpc.errors import InvalidArgument, InvalidArguments, PermissionDenied, Unauthenticated
from lgsp.telemetry import trace_headers

SERVICE = "lgsp.test.v1.TestService"
log = logging.getLogger("tests.lgsp.grpc")


class TestServicer:
    __test__ = False  # not a pytest class

    def __init__(self, bus: asyncio.Queue[tuple[dict[str, str], bytes]] | None = None) -> None:
        self.bus = bus
        self.active = 0
        self.entered = asyncio.Event()

    async def Sleep(self, request: EchoRequest, context: grpc.aio.ServicerContext) -> EchoResponse:
        self.active += 1
        if self.active >= 2:
            self.entered.set()
        try:
            await asyncio.sleep(float(request.message))
        finally:
            self.active -= 1
        log.info("sleep finished", extra={"slept_s": float(request.message)})
        return EchoResponse(message=request.message)

    async def Fail(self, request: EchoRequest, context: grpc.aio.ServicerContext) -> EchoResponse:
        if request.message == "invalid":
            raise InvalidArgument("document.subject", "must not be empty")
        if request.message == "invalid-many":
            raise InvalidArguments([("agency_code", "unknown agency"), ("year", "in the future")])
        if request.message == "abort":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "aborted by handler")
        raise RuntimeError("database password is hunter2")

    async def WhoAmI(self, request: EchoRequest, context: grpc.aio.ServicerContext) -> EchoResponse:
        p = current_principal()
        return EchoResponse(caller=p.subject, message=",".join(sorted(p.roles)))

    async def Emit(self, request: EchoRequest, context: grpc.aio.ServicerContext) -> EchoResponse:
        """Publishes a record carrying the trace, as the outbox relay / bus producer will."""
        assert self.bus is not None
        tracer = trace.get_tracer(__name__)
        with tracer.start_as_current_span("documents.issued publish", kind=trace.SpanKind.PRODUCER):
            await self.bus.put((trace_headers(), request.message.encode()))
        return EchoResponse(message=request.message)

    async def Count(
        self, request: EchoRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[EchoResponse]:
        n, _, fail = request.message.partition(":")
        for i in range(int(n)):
            yield EchoResponse(message=str(i), caller=current_principal().subject)
        if fail:
            raise InvalidArgument("message", "failed after the last item")

    async def CountWrite(self, request: EchoRequest, context: grpc.aio.ServicerContext) -> None:
        for i in range(int(request.message)):
            await context.write(EchoResponse(message=str(i)))

    async def Join(
        self, requests: AsyncIterator[EchoRequest], context: grpc.aio.ServicerContext
    ) -> EchoResponse:
        parts = [r.message async for r in requests]
        return EchoResponse(message="".join(parts), caller=current_principal().subject)

    async def Chat(
        self, requests: AsyncIterator[EchoRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[EchoResponse]:
        async for r in requests:
            yield EchoResponse(message=r.message.upper())


def add_test_service(servicer: TestServicer, server: Any) -> None:
    kw: dict[str, Any] = {
        "request_deserializer": EchoRequest.FromString,
        "response_serializer": EchoResponse.SerializeToString,
    }
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(getattr(servicer, name), **kw)
        for name in ("Sleep", "Fail", "WhoAmI", "Emit")
    }
    handlers["Count"] = grpc.unary_stream_rpc_method_handler(servicer.Count, **kw)
    handlers["CountWrite"] = grpc.unary_stream_rpc_method_handler(servicer.CountWrite, **kw)
    handlers["Join"] = grpc.stream_unary_rpc_method_handler(servicer.Join, **kw)
    handlers["Chat"] = grpc.stream_stream_rpc_method_handler(servicer.Chat, **kw)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


def method(channel: grpc.aio.Channel, name: str, shape: str = "unary_unary") -> Any:
    """A callable for /lgsp.test.v1.TestService/<name> with the given RPC shape."""
    factory = getattr(channel, shape)
    return factory(
        f"/{SERVICE}/{name}",
        request_serializer=EchoRequest.SerializeToString,
        response_deserializer=EchoResponse.FromString,
    )


class TokenAuthenticator:
    """Test authenticator: 'Bearer <subject>:<role,role>'; subject 'bad' is refused."""

    async def authenticate(self, metadata: Mapping[str, str], method: str) -> Principal:
        header = metadata.get("authorization", "")
        if not header.startswith("Bearer "):
            raise Unauthenticated("missing bearer token")
        subject, _, roles = header.removeprefix("Bearer ").partition(":")
        if subject == "bad":
            raise Unauthenticated("token expired")
        if subject == "crash":
            raise RuntimeError("identity provider said: secret internals")
        if method.endswith("/WhoAmI") and "clerk" not in roles.split(","):
            raise PermissionDenied("role clerk required")
        return Principal(
            subject=subject,
            kind="user",
            agency_code="000.00.00.H27",
            roles=frozenset(filter(None, roles.split(","))),
            token=header,
        )
