"""Ended sessions are refused by every service within a second, from identity's sessions
topic, on both bus backends; a service that starts later refuses them from its first call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from lgsp import events
from lgsp.api.diagnostics.v1.diagnostics_pb2 import EchoRequest
from lgsp.api.identity.v1 import sessions_pb2 as spb
from lgsp.app import ServiceRuntime
from lgsp.authn import JwtAuthenticator
from lgsp.authn.sessions import SESSIONS_TOPIC, EndedSessions
from lgsp.bus import Bus
from lgsp.config import ServiceSettings, load_settings
from lgsp.grpc.client import channel
from lgsp.grpc.errors import Unauthenticated, Unavailable
from lgsp.plugins import Plugin, Wiring
from tests.lgsp.bus.conftest import bus  # noqa: F401 — the fixture: embedded and Kafka
from tests.lgsp.grpc._support import TestServicer, add_test_service, method
from tests.support.issuer import FakeIssuer

USER = "7f1c2a9e-0000-4000-8000-000000000001"


def test_the_rules_ended_session_revoked_subject_and_expiry() -> None:
    now = [1_000_000.0]
    ended = EndedSessions(clock=lambda: now[0])
    ended.followed = True
    ended.check("s1", USER, now[0])  # nothing ended yet
    exp = spb.SessionEnded(session_id="s1", user_id=USER)
    exp.expires_at.FromSeconds(int(now[0]) + 600)
    ended.apply(exp)
    with pytest.raises(Unauthenticated, match="session ended"):
        ended.check("s1", USER, now[0])
    ended.check("s2", USER, now[0])  # another session of the same user still works
    revoked = spb.SubjectTokensRevoked(subject="client:motcua")
    revoked.not_before.FromSeconds(int(now[0]))
    ended.apply(revoked)
    with pytest.raises(Unauthenticated, match="revoked"):
        ended.check("", "client:motcua", now[0] - 5)
    with pytest.raises(Unauthenticated):
        ended.check("", "client:motcua", None)  # no iat: cannot prove it is newer
    ended.check("", "client:motcua", now[0] + 1)  # issued after the revocation
    now[0] += 601
    ended.prune()
    ended.check("s1", USER, now[0])  # its tokens expired anyway: forgotten
    assert "client:motcua" in ended.subjects  # kept a day when no expiry is given


async def test_wait_ready_is_bounded_and_nothing_is_checked_without_a_follower() -> None:
    ended = EndedSessions(ready_timeout=0.2)
    ended.apply(spb.SessionEnded(session_id="s1"))
    assert ended.ready
    ended.check("s1", USER, None)  # an authenticator outside a runtime: signatures only
    ended.followed = True
    with pytest.raises(Unauthenticated):
        ended.check("s1", USER, None)
    started = time.monotonic()
    with pytest.raises(Unavailable, match="still loading"):
        await ended.wait_ready()
    assert time.monotonic() - started < 1


async def publish(to: Bus, payload: object, subject: str) -> None:
    """As identity publishes it, on the sessions topic."""
    envelope = events.make_envelope(payload, source="identity", subject=subject)  # type: ignore[arg-type]
    headers = {k: v.encode() for k, v in events.envelope_headers(envelope).items()}
    await to.publish(SESSIONS_TOPIC, subject, events.encode(envelope), headers)


async def start_service(on: Bus, tmp_path: Path, issuer: FakeIssuer) -> ServiceRuntime:
    settings = load_settings(
        env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path), "LGSP_TELEMETRY_ENABLED": "false"}
    )
    authn = JwtAuthenticator(issuer.issuer, sessions=EndedSessions(ready_timeout=20))
    plugin = Plugin(
        "documents",
        "a service checking tokens",
        ServiceSettings,
        wire=lambda rt: Wiring(
            servicers=[(add_test_service, TestServicer())],
            authenticator=authn,
            closers=[authn.aclose],
        ),
    )
    runtime = ServiceRuntime(plugin, settings, port=0, bus=on)
    await runtime.start()
    return runtime


@pytest.fixture
async def issuer() -> AsyncIterator[FakeIssuer]:
    fake = FakeIssuer()
    await fake.start()
    yield fake
    await fake.stop()


async def refused_within(
    call: object, metadata: tuple[tuple[str, str], ...], limit: float
) -> float:
    started = time.monotonic()
    while True:
        try:
            await call(EchoRequest(), metadata=metadata, timeout=25)  # type: ignore[operator]
        except grpc.aio.AioRpcError as e:
            assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e.details()
            return time.monotonic() - started
        assert time.monotonic() - started < limit, "the ended session was still accepted"
        await asyncio.sleep(0.02)


async def test_a_service_refuses_an_ended_session_within_a_second(
    bus: Bus,  # noqa: F811
    tmp_path: Path,
    issuer: FakeIssuer,
) -> None:
    runtime = await start_service(bus, tmp_path / "a", issuer)
    ch = channel(runtime.server.address, service_name="test")
    try:
        who = method(ch, "WhoAmI")
        token = issuer.token(sid="session-1")
        other = issuer.token(sid="session-2")
        client = issuer.token(sub=None, client_id="motcua", azp="motcua", sid=None)
        md = lambda t: (("authorization", f"Bearer {t}"),)  # noqa: E731
        for t in (token, other, client):
            assert (await who(EchoRequest(), metadata=md(t), timeout=25)).caller  # and cached
        await publish(bus, spb.SessionEnded(session_id="session-1", user_id=USER), USER)
        assert await refused_within(who, md(token), 1.0) < 1.0
        assert (await who(EchoRequest(), metadata=md(other), timeout=5)).caller
        lag = getattr(bus, "lag", None)  # the embedded bus reports lag per group
        if lag is not None:  # the follower is no consumer with work waiting
            assert not [g for (g, _, _) in await lag() if "-sessions-" in g]
        revoked = spb.SubjectTokensRevoked(subject="client:motcua")
        revoked.not_before.FromSeconds(int(time.time()) + 1)
        await publish(bus, revoked, "client:motcua")
        assert await refused_within(who, md(client), 1.0) < 1.0

        # A service started afterwards reads the topic from its beginning before answering.
        later = await start_service(bus, tmp_path / "b", issuer)
        ch2 = channel(later.server.address, service_name="test")
        try:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await method(ch2, "WhoAmI")(EchoRequest(), metadata=md(token), timeout=25)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert (await method(ch2, "WhoAmI")(EchoRequest(), metadata=md(other))).caller
        finally:
            await ch2.close()
            await later.stop(0)
    finally:
        await ch.close()
        await runtime.stop(0)
