"""Who may change what: realms, the actor of a change, and the administration rules.

- `admin` (a platform admin), or the system itself (CLI, seeding), may change anything.
- `agency_admin` may administer the agencies it holds that role in, and the agencies below
  one where the grant includes sub-agencies.
- Only platform admins make admins, grant roles outside an agency, create agencies and
  register client systems.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.identity.domain.errors import PermissionDenied

REALM = "lgsp"  # the province
MASTER = "master"  # only the bootstrap admin and the admin-cli client


@dataclass(frozen=True)
class Actor:
    """Who asks for a change: an authenticated admin, a client system, or the system itself."""

    id: str  # user id, "client:<client_id>", or "" for the system (CLI, seeding)
    roles: frozenset[str] = frozenset()
    realm: str = REALM
    remote_ip: str = ""
    name: str = ""

    @property
    def is_system(self) -> bool:
        return self.id == ""

    @property
    def is_platform_admin(self) -> bool:
        return self.is_system or "admin" in self.roles


SYSTEM = Actor(id="", name="system")


def actor_from_claims(claims: Mapping[str, Any], remote_ip: str = "") -> Actor:
    """The actor an access token of this provider names (master-realm tokens count as admin
    only with the admin role)."""
    realm = str(claims.get("iss", "")).rsplit("/", 1)[-1]
    roles = frozenset(claims.get("realm_access", {}).get("roles", []))
    if realm == MASTER and "admin" not in roles:
        roles = frozenset()
    ident = (
        f"client:{claims['client_id']}" if claims.get("client_id") else str(claims.get("sub", ""))
    )
    return Actor(
        id=ident,
        roles=roles,
        realm=realm,
        remote_ip=remote_ip,
        name=str(claims.get("preferred_username", "")),
    )


def require_platform_admin(actor: Actor) -> None:
    if not actor.is_platform_admin:
        raise PermissionDenied("this needs the admin role")


def may_administer(
    actor: Actor, agency_code: str | None, admin_grants: Iterable[tuple[str, bool]]
) -> bool:
    """Whether the actor administers agency_code, given its agency_admin grants
    (agency code, include_sub) on the agency and its ancestors."""
    if actor.is_platform_admin:
        return True
    if not (agency_code and actor.id and "agency_admin" in actor.roles):
        return False
    return any(code == agency_code or include_sub for code, include_sub in admin_grants)


def refuse_agency_admin(agency_code: str | None) -> PermissionDenied:
    return PermissionDenied(
        f"this needs the admin role, or agency_admin over {agency_code or 'the agency'}"
    )
