"""The shared agency directory: identity's tree over gRPC (cached, single flight, reloaded in
the background), kept current by identity's agency events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from lgsp import events
from lgsp.agencies import IDENTITY_TOPIC, Agency, AgencyDirectory, IdentityAgencyDirectory
from lgsp.api.identity.v1 import events_pb2, identity_pb2, identity_pb2_grpc
from lgsp.app import ServiceRuntime
from lgsp.bus import open_bus
from lgsp.config import ServiceSettings, load_settings
from lgsp.grpc import LgspServer, build_server
from lgsp.grpc.client import channel
from lgsp.plugins import Plugin, Wiring
from tests.lgsp.auth.test_roles import (
    COMMUNE,
    HEALTH,
    JUSTICE,
    JUSTICE_OFFICE,
    PARENTS,
    PROVINCE,
    official,
)
from tests.lgsp.storage.support import MIGRATIONS

# --- IdentityAgencyDirectory against a small fake IdentityService-----------------------------


def _node(code: str, children: list[identity_pb2.AgencyNode]) -> identity_pb2.AgencyNode:
    parent = PARENTS[code] or ""
    return identity_pb2.AgencyNode(
        agency=identity_pb2.Agency(code=code, parent_code=parent), children=children
    )


class FakeIdentity(identity_pb2_grpc.IdentityServiceServicer):
    def __init__(self) -> None:
        self.calls = 0
        self.with_health = True
        self.metadata: list[dict[str, str]] = []

    async def GetAgencyTree(self, request, context):  # type: ignore[no-untyped-def]
        self.calls += 1
        self.metadata.append(dict(context.invocation_metadata()))
        justice = _node(JUSTICE, [_node(JUSTICE_OFFICE, [])])
        children = [justice, _node(COMMUNE, [])]
        if self.with_health:
            children.append(_node(HEALTH, []))
        return identity_pb2.GetAgencyTreeResponse(roots=[_node(PROVINCE, children)])


@pytest.fixture
async def identity() -> AsyncIterator[tuple[FakeIdentity, LgspServer, grpc.aio.Channel]]:
    servicer = FakeIdentity()
    server = build_server(
        "identity",
        servicers=[(identity_pb2_grpc.add_IdentityServiceServicer_to_server, servicer)],
    )
    await server.start()
    ch = channel(server.address, service_name="test")
    yield servicer, server, ch
    await ch.close()
    await server.stop(0)


async def test_remote_tree_loads_and_answers(identity) -> None:
    servicer, _, ch = identity

    async def metadata() -> list[tuple[str, str]]:
        return [("authorization", "Bearer service-token")]

    tree = IdentityAgencyDirectory(ch, metadata=metadata)
    await tree.load()
    assert list(tree.ancestors(JUSTICE_OFFICE)) == [JUSTICE, PROVINCE]
    p = official({PROVINCE: {"leader"}})
    assert p.has_role("leader", JUSTICE_OFFICE, tree=tree)
    assert not official({JUSTICE: {"leader"}}).has_role("leader", HEALTH, tree=tree)
    assert servicer.metadata[0]["authorization"] == "Bearer service-token"


async def test_remote_tree_is_cached_for_its_ttl(identity) -> None:
    servicer, _, ch = identity
    now = [0.0]
    tree = IdentityAgencyDirectory(ch, ttl_s=60, clock=lambda: now[0])
    await asyncio.gather(*(tree.load() for _ in range(5)))
    for _ in range(10):
        tree.ancestors(JUSTICE_OFFICE)
        await tree.load()
    assert servicer.calls == 1
    now[0] = 61
    await tree.load()
    assert servicer.calls == 2


async def test_remote_tree_learns_a_new_agency_in_the_background(identity) -> None:
    servicer, _, ch = identity
    servicer.with_health = False
    tree = IdentityAgencyDirectory(ch, min_refresh_interval_s=0)
    await tree.load()
    p = official({PROVINCE: {"leader"}})
    assert not p.has_role("leader", HEALTH, tree=tree)  # unknown yet: fails closed
    servicer.with_health = True
    for _ in range(100):
        await asyncio.sleep(0.01)
        if p.has_role("leader", HEALTH, tree=tree):
            break
    assert p.has_role("leader", HEALTH, tree=tree)
    assert servicer.calls == 2
    await tree.aclose()


# --- following identity's events ----------------------------------------------------------

SOCIAL = "000.00.16.H27"  # Sở Lao động (merged into Sở Nội vụ in 2025)


def created(code: str, parent: str, name: str = "Sở Lao động - Thương binh và Xã hội") -> object:
    return events_pb2.AgencyCreated(
        agency=identity_pb2.Agency(code=code, name=name, short_name="SLĐTBXH", parent_code=parent)
    )


async def test_events_change_the_directory_without_a_reload(identity) -> None:
    servicer, _, ch = identity
    directory = IdentityAgencyDirectory(ch, min_refresh_interval_s=3600)
    await directory.load()
    p = official({PROVINCE: {"leader"}})
    directory.apply(created(SOCIAL, PROVINCE))
    assert p.has_role("leader", SOCIAL, tree=directory)
    assert directory.get(SOCIAL) == Agency(
        SOCIAL, "Sở Lao động - Thương binh và Xã hội", "SLĐTBXH", PROVINCE
    )
    # Moved under the Department of Justice, renamed.
    moved = identity_pb2.Agency(code=SOCIAL, name="Phòng LĐ", short_name="PLĐ", parent_code=JUSTICE)
    directory.apply(events_pb2.AgencyUpdated(agency=moved, changed_fields=["parent_code", "name"]))
    assert directory.ancestors(SOCIAL) == (JUSTICE, PROVINCE)
    assert SOCIAL in directory.descendants(JUSTICE)
    assert directory.get(SOCIAL).short_name == "PLĐ"  # type: ignore[union-attr]
    directory.apply(events_pb2.AgencyDisabled(code=SOCIAL, successor_code=HEALTH, reason="merged"))
    gone = directory.get(SOCIAL)
    assert gone is not None and gone.disabled and gone.successor_code == HEALTH
    assert servicer.calls == 1  # no reload for any of it


async def test_an_event_during_a_load_is_not_lost(identity) -> None:
    _, _, ch = identity
    directory = IdentityAgencyDirectory(ch)
    release = asyncio.Event()

    async def slow_metadata() -> list[tuple[str, str]]:
        directory.apply(created(SOCIAL, PROVINCE))  # arrives while the tree is being fetched
        await release.wait()
        return []

    directory._metadata = slow_metadata
    loading = asyncio.create_task(directory.load())
    await asyncio.sleep(0.05)
    release.set()
    await loading
    assert SOCIAL in directory and PROVINCE in directory


async def test_the_subscription_follows_identitys_topic(identity, tmp_path: Path) -> None:
    """The events come over the bus through lgsp.app's consumer, as in a running service."""
    servicer, _, ch = identity
    directory = IdentityAgencyDirectory(ch, min_refresh_interval_s=3600)
    await directory.load()
    settings = load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path)})
    bus = open_bus(f"sqlite:///{tmp_path}/bus.db")
    runtime = ServiceRuntime(
        Plugin(
            "documents",
            "agency follower",
            ServiceSettings,
            wire=lambda rt: Wiring(
                subscriptions=[directory.subscription(f"agencies-{uuid.uuid4().hex[:6]}")]
            ),
            migrations=MIGRATIONS,
        ),
        settings,
        port=0,
        bus=bus,
    )
    await runtime.start()
    try:
        for payload in (
            created(SOCIAL, PROVINCE),
            events_pb2.AgencyDisabled(code=SOCIAL, successor_code=HEALTH),
        ):
            envelope = events.make_envelope(payload, source="identity", subject=SOCIAL)
            await bus.publish(IDENTITY_TOPIC, SOCIAL, events.encode(envelope))
        for _ in range(200):
            found = directory.get(SOCIAL)
            if found is not None and found.disabled:
                break
            await asyncio.sleep(0.05)
        assert found is not None and found.disabled and found.successor_code == HEALTH
        assert directory.ancestors(SOCIAL) == (PROVINCE,)
        assert servicer.calls == 1
    finally:
        await runtime.stop(grace=0)
        await bus.close()


def test_a_static_directory() -> None:
    d = AgencyDirectory(Agency(code, code, "X", parent or "") for code, parent in PARENTS.items())
    assert d.ancestors(JUSTICE_OFFICE) == (JUSTICE, PROVINCE)
    assert sorted(d.descendants(PROVINCE)) == sorted([JUSTICE, JUSTICE_OFFICE, HEALTH, COMMUNE])
    assert d.codes() == sorted(PARENTS) and len(d) == 5 and d.get("nope") is None
