"""JwtAuthenticator on a real gRPC server built with lgsp.grpc.build_server."""

from __future__ import annotations

import grpc
import pytest

from lgsp.api.diagnostics.v1 import diagnostics_pb2, diagnostics_pb2_grpc
from lgsp.api.diagnostics.v1.diagnostics_pb2 import EchoRequest
from lgsp.authn import JwtAuthenticator
from lgsp.grpc import build_server
from lgsp.grpc.client import channel
from tests.lgsp.grpc._support import TestServicer, add_test_service, method
from tests.support.issuer import FakeIssuer


@pytest.fixture
async def server(authn: JwtAuthenticator):
    srv = build_server("test", servicers=[(add_test_service, TestServicer())], authenticator=authn)
    await srv.start()
    ch = channel(srv.address, service_name="test-client")
    yield ch
    await ch.close()
    await srv.stop(0)


def auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def test_handler_sees_the_principal(issuer: FakeIssuer, server) -> None:
    who = method(server, "WhoAmI")
    reply = await who(EchoRequest(), metadata=auth(issuer.token()))
    assert reply.caller == "7f1c2a9e-0000-4000-8000-000000000001"
    assert reply.message == "leader,specialist"


async def test_missing_and_bad_tokens_are_unauthenticated(issuer: FakeIssuer, server) -> None:
    who = method(server, "WhoAmI")
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await who(EchoRequest())
    assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
    token = issuer.token(aud=["account"])
    with pytest.raises(grpc.aio.AioRpcError) as wrong_aud:
        await who(EchoRequest(), metadata=auth(token))
    assert wrong_aud.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "audience" in (wrong_aud.value.details() or "")
    assert token not in (wrong_aud.value.details() or "")


async def test_revoked_token_refused_on_a_sensitive_method(issuer: FakeIssuer, server) -> None:
    token = issuer.token()
    issuer.revoked.add(token)
    with pytest.raises(grpc.aio.AioRpcError) as revoked:
        await method(server, "Fail")(EchoRequest(message="invalid"), metadata=auth(token))
    assert revoked.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in (revoked.value.details() or "")
    reply = await method(server, "WhoAmI")(EchoRequest(), metadata=auth(token))
    assert reply.caller  # not sensitive: the signature is enough


async def test_public_methods_need_no_token(issuer: FakeIssuer, server) -> None:
    echo = diagnostics_pb2_grpc.DiagnosticsServiceStub(server).Echo
    reply = await echo(diagnostics_pb2.EchoRequest(message="xin chào"))
    assert reply.message == "xin chào"
    # A bad token on a public method is anonymous, not an error.
    reply = await echo(diagnostics_pb2.EchoRequest(message="x"), metadata=auth(issuer.token(exp=1)))
    assert reply.message == "x"


async def test_two_authorization_entries_in_one_call_are_refused(
    issuer: FakeIssuer, server
) -> None:
    """A proxy and a service may read different entries: the call is refused, whichever
    comes last, even with two valid tokens and on a public method."""
    good, other = issuer.token(), issuer.token(sub="7f1c2a9e-0000-4000-8000-000000000002")
    who = method(server, "WhoAmI")
    for entries in [(good, "garbage"), ("garbage", good), (good, other)]:
        metadata = tuple(("authorization", f"Bearer {t}") for t in entries)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await who(EchoRequest(), metadata=metadata)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "more than one authorization" in (err.value.details() or "")
    echo = diagnostics_pb2_grpc.DiagnosticsServiceStub(server).Echo
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await echo(diagnostics_pb2.EchoRequest(message="x"), metadata=auth(good) + auth(good))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (await who(EchoRequest(), metadata=auth(good))).caller
