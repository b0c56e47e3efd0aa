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
# Keycloak's own admin client, in every realm: public, with the password grant (python-keycloak's
# KeycloakAdmin and command-line tools sign in through it). The one public client that keeps
# the password grant; every other one must be confidential and enable it.
ADMIN_CLI = "admin-cli"


@dataclass(frozen=True)
class Actor:
    """Who asks for a change: an authenticated admin, a client system, or the system itself."""

    id: str  # user id, "client:<client_id>", or "" for the system (CLI, seeding)
    roles: frozenset[str] = frozenset()
    realm: str = REALM
    remote_ip: str = ""
    name: str = ""
    # Its token was obtained with an app password (a mail client's): no self-service.
    by_app_password: bool = False

    @property
    def is_system(self) -> bool:
        return self.id == ""

    @property
    def is_platform_admin(self) -> bool:
        return self.is_system or "admin" in self.roles


SYSTEM = Actor(id="", name="system")


# The `amr` (RFC 8176) of a token obtained with an app password (an unregistered value, which
# RFC 8176 §2 allows).
APP_PASSWORD_AMR = "app_password"


def signed_in_by_app_password(claims: Mapping[str, Any]) -> bool:
    amr = claims.get("amr") or []
    return isinstance(amr, list) and APP_PASSWORD_AMR in amr


def actor_from_claims(claims: Mapping[str, Any], remote_ip: str = "") -> Actor:
    """The actor an access token of this provider names (master-realm tokens count as admin
    only with the admin role; a token a mail client got with an app password administers
    nothing)."""
    realm = str(claims.get("iss", "")).rsplit("/", 1)[-1]
    roles = frozenset(claims.get("realm_access", {}).get("roles", []))
    by_app_password = signed_in_by_app_password(claims)
    if (realm == MASTER and "admin" not in roles) or by_app_password:
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
        by_app_password=by_app_password,
    )


def require_own_account(actor: Actor) -> str:
    """The user id of an official acting on their own account (self-service): not a client
    system, not the system, not a token obtained with an app password (an app password in a
    mail client must not be able to make more of them, nor revoke the official's others)."""
    if actor.is_system or actor.id.startswith("client:") or actor.realm != REALM:
        raise PermissionDenied("this needs an official's own access token")
    if actor.by_app_password:
        raise PermissionDenied("a token obtained with an app password cannot manage app passwords")
    return actor.id


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
