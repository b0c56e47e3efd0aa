"""'This role, in this agency or its parent': Principal.has_role, require_role, agency trees."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from lgsp.api.identity.v1 import identity_pb2, identity_pb2_grpc
from lgsp.auth import ANONYMOUS, Principal, StaticAgencyTree, principal_scope, require_role
from lgsp.authn import RemoteAgencyTree
from lgsp.grpc import LgspServer, build_server
from lgsp.grpc.client import channel
from lgsp.grpc.errors import PermissionDenied, Unauthenticated

PROVINCE = "000.00.00.H30"  # UBND tỉnh
JUSTICE = "000.00.12.H30"  # Sở Tư pháp
JUSTICE_OFFICE = "000.01.12.H30"  # a unit of the department
HEALTH = "000.00.15.H30"  # Sở Y tế (a sibling of JUSTICE)
COMMUNE = "000.00.01.H30.01"

PARENTS: dict[str, str | None] = {
    PROVINCE: None,
    JUSTICE: PROVINCE,
    JUSTICE_OFFICE: JUSTICE,
    HEALTH: PROVINCE,
    COMMUNE: PROVINCE,
}
TREE = StaticAgencyTree(PARENTS)


def official(grants: dict[str, set[str]]) -> Principal:
    return Principal(
        subject="u1",
        kind="user",
        agency_code=next(iter(grants), None),
        roles=frozenset().union(*grants.values()) if grants else frozenset(),
        grants={code: frozenset(roles) for code, roles in grants.items()},
    )


def test_static_tree_ancestors() -> None:
    assert list(TREE.ancestors(JUSTICE_OFFICE)) == [JUSTICE, PROVINCE]
    assert list(TREE.ancestors(PROVINCE)) == []
    assert list(TREE.ancestors("999.99.99.X99")) == []
    looped = StaticAgencyTree({"A": "B", "B": "A"})
    assert list(looped.ancestors("A")) == ["B"]  # bad data cannot loop forever


def test_grant_on_a_parent_covers_its_descendants() -> None:
    p = official({JUSTICE: {"leader"}})
    assert p.has_role("leader", JUSTICE, tree=TREE)
    assert p.has_role("leader", JUSTICE_OFFICE, tree=TREE)
    assert not p.has_role("clerk", JUSTICE_OFFICE, tree=TREE)


def test_grant_on_a_child_does_not_cover_the_parent_or_siblings() -> None:
    p = official({JUSTICE: {"leader"}})
    assert not p.has_role("leader", PROVINCE, tree=TREE)
    assert not p.has_role("leader", HEALTH, tree=TREE)
    assert not p.has_role("leader", COMMUNE, tree=TREE)


def test_without_a_tree_only_the_agency_itself_counts() -> None:
    p = official({JUSTICE: {"leader"}})
    assert p.has_role("leader", JUSTICE)
    assert not p.has_role("leader", JUSTICE_OFFICE)
    assert p.has_role("leader")  # in some agency


def test_roles_in_several_agencies() -> None:
    p = official({JUSTICE: {"specialist"}, PROVINCE: {"clerk"}})
    assert p.has_role("clerk", HEALTH, tree=TREE)
    assert p.has_role("specialist", JUSTICE_OFFICE, tree=TREE)
    assert not p.has_role("specialist", HEALTH, tree=TREE)
    assert p.has_any_role(["leader", "specialist"], JUSTICE)


def test_require_role_reads_the_current_principal() -> None:
    p = official({JUSTICE: {"leader"}})
    with principal_scope(p):
        assert require_role("leader", JUSTICE_OFFICE, tree=TREE) is p
        assert require_role(["clerk", "leader"], JUSTICE) is p
        with pytest.raises(PermissionDenied) as denied:
            require_role("leader", HEALTH, tree=TREE)
    assert "leader" in denied.value.message and HEALTH in denied.value.message
    with principal_scope(ANONYMOUS), pytest.raises(Unauthenticated):
        require_role("leader")


# --- RemoteAgencyTree against a small fake IdentityService ----------------------------------


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

    tree = RemoteAgencyTree(ch, metadata=metadata)
    await tree.load()
    assert list(tree.ancestors(JUSTICE_OFFICE)) == [JUSTICE, PROVINCE]
    p = official({PROVINCE: {"leader"}})
    assert p.has_role("leader", JUSTICE_OFFICE, tree=tree)
    assert not official({JUSTICE: {"leader"}}).has_role("leader", HEALTH, tree=tree)
    assert servicer.metadata[0]["authorization"] == "Bearer service-token"


async def test_remote_tree_is_cached_for_its_ttl(identity) -> None:
    servicer, _, ch = identity
    now = [0.0]
    tree = RemoteAgencyTree(ch, ttl_s=60, clock=lambda: now[0])
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
    tree = RemoteAgencyTree(ch, min_refresh_interval_s=0)
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
