"""Provision accounts, roles, groups and client systems into Keycloak (or the built-in
provider's Keycloak-compatible admin API) with python-keycloak's KeycloakAdmin.

Declarative and idempotent: `provision(RealmSpec(...))` creates what is missing, updates what
differs and leaves the rest; running it twice changes nothing the second time. It only adds
(role mappings, group memberships): it never deletes what it does not know about, so accounts
managed by hand in the Keycloak console survive.

KeycloakAdmin is synchronous (requests); call `provision` through `asyncio.to_thread` from
async code.

    provisioner = KeycloakProvisioner("http://sso:8080", "lgsp",
                                      username="admin", password="…")  # a master-realm admin
    report = provisioner.provision(RealmSpec(users=[UserSpec("nguyenvanan.stp", …)]))
    print(report.summary())
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keycloak import KeycloakAdmin
from keycloak.exceptions import KeycloakError

__all__ = [
    "LGSP_ROLES",
    "ClientSpec",
    "GroupSpec",
    "KeycloakProvisioner",
    "ProvisionReport",
    "RealmSpec",
    "UserSpec",
]

log = logging.getLogger("lgsp.keycloak")

# The realm roles the platform's services check (see identity.proto, enum Role).
LGSP_ROLES: Mapping[str, str] = {
    "admin": "Quản trị nền tảng",
    "agency_admin": "Quản trị cơ quan",
    "clerk": "Văn thư",
    "specialist": "Chuyên viên",
    "leader": "Lãnh đạo",
    "one_stop_officer": "Cán bộ một cửa",
    "operator": "Vận hành",
    "auditor": "Kiểm tra, giám sát",
    "citizen": "Công dân",
}


@dataclass(frozen=True)
class UserSpec:
    username: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    enabled: bool = True
    agency_code: str | None = None
    # Set when the account is created; on an existing account only with reset_password.
    password: str | None = None
    temporary_password: bool = False
    reset_password: bool = False
    realm_roles: Sequence[str] = ()
    groups: Sequence[str] = ()  # top-level group names
    attributes: Mapping[str, str | Sequence[str]] = field(default_factory=dict)

    def representation(self) -> dict[str, Any]:
        attributes = {k: _values(v) for k, v in self.attributes.items()}
        if self.agency_code:
            attributes["agency_code"] = [self.agency_code]
        return {
            "username": self.username.lower(),
            "firstName": self.first_name,
            "lastName": self.last_name,
            "email": self.email.lower(),
            "enabled": self.enabled,
            "attributes": attributes,
        }


@dataclass(frozen=True)
class GroupSpec:
    name: str
    attributes: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    realm_roles: Sequence[str] = ()


@dataclass(frozen=True)
class ClientSpec:
    """A confidential client with a service account (client-credentials grant)."""

    client_id: str
    name: str = ""
    secret: str | None = None  # None: the server generates one (read it back with secret_of)
    service_account_roles: Sequence[str] = ()
    agency_code: str | None = None  # set on the service account (its tokens' agency_code)
    redirect_uris: Sequence[str] = ()  # non-empty: the authorization-code flow is enabled too

    def representation(self) -> dict[str, Any]:
        rep: dict[str, Any] = {
            "clientId": self.client_id,
            "name": self.name or self.client_id,
            "enabled": True,
            "protocol": "openid-connect",
            "publicClient": False,
            "clientAuthenticatorType": "client-secret",
            "serviceAccountsEnabled": True,
            "standardFlowEnabled": bool(self.redirect_uris),
            "directAccessGrantsEnabled": False,
            "redirectUris": list(self.redirect_uris),
            # Keycloak: what services need in the access token (aud "lgsp", agency claims).
            "protocolMappers": _LGSP_MAPPERS,
        }
        if self.agency_code:
            # ClientRepresentation.attributes is string → string; the built-in provider
            # takes the client's owner agency from it.
            rep["attributes"] = {"agency_code": self.agency_code}
        if self.secret is not None:
            rep["secret"] = self.secret
        return rep


@dataclass(frozen=True)
class RealmSpec:
    roles: Mapping[str, str] = field(default_factory=lambda: dict(LGSP_ROLES))
    groups: Sequence[GroupSpec] = ()
    users: Sequence[UserSpec] = ()
    clients: Sequence[ClientSpec] = ()


@dataclass
class ProvisionReport:
    """What a run did, as "kind:name" entries (e.g. "user:nguyenvanan.stp")."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)

    def summary(self) -> str:
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged"
        )


# Keycloak protocol mappers giving access tokens the claims LGSP services read.
_LGSP_MAPPERS: list[dict[str, Any]] = [
    {
        "name": "lgsp audience",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-audience-mapper",
        "config": {
            "included.custom.audience": "lgsp",
            "access.token.claim": "true",
            "id.token.claim": "false",
        },
    },
    {
        "name": "agency_code",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-usermodel-attribute-mapper",
        "config": {
            "user.attribute": "agency_code",
            "claim.name": "agency_code",
            "jsonType.label": "String",
            "access.token.claim": "true",
            "id.token.claim": "true",
            "userinfo.token.claim": "true",
        },
    },
    {
        "name": "agency_roles",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-usermodel-attribute-mapper",
        "config": {
            "user.attribute": "agency_roles",
            "claim.name": "agency_roles",
            "jsonType.label": "JSON",
            "access.token.claim": "true",
            "id.token.claim": "false",
            "userinfo.token.claim": "false",
        },
    },
]


def _values(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


class KeycloakProvisioner:
    """Applies a RealmSpec to one realm through the Keycloak admin REST API.

    Authenticates as a master-realm admin (username/password, client "admin-cli") or as a
    client with a service account allowed to manage the realm (client_id/client_secret in
    `auth_realm`). Pass `admin` to use a KeycloakAdmin built elsewhere.
    """

    def __init__(
        self,
        server_url: str,
        realm: str = "lgsp",
        *,
        username: str | None = None,
        password: str | None = None,
        client_id: str = "admin-cli",
        client_secret: str | None = None,
        auth_realm: str = "master",
        verify: bool | str = True,
        timeout: int = 30,
        admin: KeycloakAdmin | None = None,
    ) -> None:
        self.realm = realm
        if admin is None:
            if client_secret is None and (username is None or password is None):
                raise ValueError("give username and password, or client_id and client_secret")
            admin = KeycloakAdmin(
                server_url=server_url.rstrip("/") + "/",
                username=username if client_secret is None else None,
                password=password if client_secret is None else None,
                client_id=client_id,
                client_secret_key=client_secret,
                realm_name=realm,
                user_realm_name=auth_realm,
                verify=verify,
                timeout=timeout,
            )
        self.admin = admin
        self._role_reps: dict[str, dict[str, Any]] = {}
        self._group_ids: dict[str, str] = {}

    # --- the whole spec -----------------------------------------------------------------

    def provision(self, spec: RealmSpec) -> ProvisionReport:
        report = ProvisionReport()
        self.ensure_roles(spec.roles, report)
        for group in spec.groups:
            self.ensure_group(group, report)
        for user in spec.users:
            self.ensure_user(user, report)
        for client in spec.clients:
            self.ensure_client(client, report)
        log.info("provisioned realm %s: %s", self.realm, report.summary())
        return report

    # --- roles --------------------------------------------------------------------------

    def ensure_roles(self, roles: Mapping[str, str], report: ProvisionReport) -> None:
        existing = {r["name"]: r for r in self.admin.get_realm_roles(brief_representation=True)}
        for name, description in roles.items():
            if name in existing:
                report.unchanged.append(f"role:{name}")
                continue
            self.admin.create_realm_role({"name": name, "description": description})
            report.created.append(f"role:{name}")
        self._role_reps.clear()

    def _role(self, name: str) -> dict[str, Any]:
        rep = self._role_reps.get(name)
        if rep is None:
            rep = self._role_reps[name] = self.admin.get_realm_role(name)
        return rep

    # --- groups -------------------------------------------------------------------------

    def _find_group(self, name: str) -> dict[str, Any] | None:
        for group in self.admin.get_groups({"search": name}):
            if group.get("name") == name:
                return dict(group)
        return None

    def ensure_group(self, spec: GroupSpec, report: ProvisionReport) -> str:
        what = f"group:{spec.name}"
        attributes = {k: _values(v) for k, v in spec.attributes.items()}
        group = self._find_group(spec.name)
        changed = False
        if group is None:
            gid = self.admin.create_group({"name": spec.name, "attributes": attributes})
            if not gid:  # older servers answer without a Location
                found = self._find_group(spec.name)
                gid = found["id"] if found else None
            if not gid:
                raise KeycloakError(f"group {spec.name} was not created")
            report.created.append(what)
        else:
            gid = group["id"]
            current = group.get("attributes") or {}
            if any(current.get(k) != v for k, v in attributes.items()):
                merged = {**current, **attributes}
                self.admin.update_group(gid, {"name": spec.name, "attributes": merged})
                changed = True
        if spec.realm_roles:
            held = {r["name"] for r in self.admin.get_group_realm_roles(gid)}
            missing = [self._role(r) for r in spec.realm_roles if r not in held]
            if missing:
                self.admin.assign_group_realm_roles(gid, missing)
                changed = True
        if group is not None:
            (report.updated if changed else report.unchanged).append(what)
        self._group_ids[spec.name] = str(gid)
        return str(gid)

    def _group_id(self, name: str) -> str:
        gid = self._group_ids.get(name)
        if gid is None:
            group = self._find_group(name)
            if group is None:
                raise KeycloakError(f"group {name} does not exist (add it to RealmSpec.groups)")
            gid = self._group_ids[name] = group["id"]
        return gid

    # --- users --------------------------------------------------------------------------

    def _find_user(self, username: str) -> dict[str, Any] | None:
        for user in self.admin.get_users({"username": username.lower(), "exact": True}):
            if user.get("username", "").lower() == username.lower():
                return dict(user)
        return None

    def ensure_user(self, spec: UserSpec, report: ProvisionReport) -> str:
        what = f"user:{spec.username.lower()}"
        desired = spec.representation()
        user = self._find_user(spec.username)
        changed = False
        if user is None:
            payload = dict(desired)
            if spec.password is not None:
                payload["credentials"] = [
                    {
                        "type": "password",
                        "value": spec.password,
                        "temporary": spec.temporary_password,
                    }
                ]
            uid = self.admin.create_user(payload, exist_ok=False)
            report.created.append(what)
        else:
            uid = user["id"]
            if _user_differs(user, desired):
                # Keep attributes this spec does not mention (set by hand or by other tools).
                merged = {**(user.get("attributes") or {}), **desired["attributes"]}
                self.admin.update_user(uid, {**desired, "attributes": merged})
                changed = True
            if spec.password is not None and spec.reset_password:
                self.admin.set_user_password(uid, spec.password, temporary=spec.temporary_password)
                changed = True
        if self._grant_realm_roles(uid, spec.realm_roles):
            changed = True
        if spec.groups:
            member_of = {g.get("name") for g in self.admin.get_user_groups(uid)}
            for name in spec.groups:
                if name not in member_of:
                    self.admin.group_user_add(uid, self._group_id(name))
                    changed = True
        if user is not None:
            (report.updated if changed else report.unchanged).append(what)
        return str(uid)

    def _grant_realm_roles(self, user_id: str, roles: Sequence[str]) -> bool:
        if not roles:
            return False
        held = {r["name"] for r in self.admin.get_realm_roles_of_user(user_id)}
        missing = [self._role(r) for r in roles if r not in held]
        if missing:
            self.admin.assign_realm_roles(user_id, missing)
        return bool(missing)

    # --- clients ------------------------------------------------------------------------

    def ensure_client(self, spec: ClientSpec, report: ProvisionReport) -> str:
        """Create the client if missing (an existing client's settings are left as they
        are: the built-in provider's admin API cannot update clients); then make sure its
        service account holds the roles and agency."""
        what = f"client:{spec.client_id}"
        internal_id = self.admin.get_client_id(spec.client_id)
        changed = False
        if internal_id is None:
            internal_id = self.admin.create_client(spec.representation())
            if not internal_id:
                internal_id = self.admin.get_client_id(spec.client_id)
            if not internal_id:
                raise KeycloakError(f"client {spec.client_id} was not created")
            report.created.append(what)
        account = self.admin.get_client_service_account_user(internal_id)
        account_id = account["id"]
        if spec.agency_code:
            attrs = account.get("attributes") or {}
            if attrs.get("agency_code") != [spec.agency_code]:
                merged = {**attrs, "agency_code": [spec.agency_code]}
                self.admin.update_user(account_id, {"attributes": merged})
                changed = True
        if self._grant_realm_roles(account_id, spec.service_account_roles):
            changed = True
        if what not in report.created:
            (report.updated if changed else report.unchanged).append(what)
        return str(internal_id)

    def secret_of(self, client_id: str) -> str:
        """The current secret of a confidential client."""
        internal_id = self.admin.get_client_id(client_id)
        if internal_id is None:
            raise KeycloakError(f"client {client_id} does not exist")
        return str(self.admin.get_client_secrets(internal_id)["value"])


def _user_differs(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    for key in ("firstName", "lastName", "email", "enabled"):
        if (current.get(key) or type(desired[key])()) != desired[key]:
            return True
    attrs = current.get("attributes") or {}
    return any(attrs.get(k) != v for k, v in desired["attributes"].items())
