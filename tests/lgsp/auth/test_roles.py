"""'This role, in this agency or its parent': Principal.has_role, require_role, agency trees."""

from __future__ import annotations

import pytest

from lgsp.auth import ANONYMOUS, Principal, StaticAgencyTree, principal_scope, require_role
from lgsp.grpc.errors import PermissionDenied, Unauthenticated

PROVINCE = "000.00.00.H27"  # UBND tỉnh
JUSTICE = "000.00.12.H27"  # Sở Tư pháp
JUSTICE_OFFICE = "000.01.12.H27"  # a unit of the department
HEALTH = "000.00.15.H27"  # Sở Y tế (a sibling of JUSTICE)
COMMUNE = "000.00.01.H27.01"

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
