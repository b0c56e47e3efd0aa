"""Roles: granting and revoking them (per agency), and the realm roles made through the
admin REST API beside the built-in ones."""

from __future__ import annotations

from typing import Any

from lgsp.api.identity.v1 import events_pb2 as ev
from lgsp.api.identity.v1 import identity_pb2 as pb
from services.identity.adapters import proto
from services.identity.domain import model
from services.identity.domain.access import REALM, Actor, require_platform_admin
from services.identity.domain.errors import AlreadyExists, Invalid, NotFound
from services.identity.service_layer.common import (
    DirectoryUseCases,
    account_message,
    now,
    require_agency_admin,
)


class Roles(DirectoryUseCases):
    def grant(
        self,
        actor: Actor,
        user_id: str,
        role: str,
        agency_code: str,
        include_sub: bool = False,
    ) -> pb.User:
        with self.change() as uow:
            r = uow.repos
            row = r.accounts.require(user_id)
            if agency_code:
                model.check_agency_code(agency_code, "agency_code")
                r.agencies.require(agency_code)
            if role == "admin" or not agency_code:
                require_platform_admin(actor)  # only admins make admins
            else:
                require_agency_admin(r, actor, agency_code)
            if role not in model.ROLE_NUMBERS and not r.realm_roles.exists(row["realm"], role):
                raise NotFound(f"role {role} not found", kind="role", name=role)
            existing = r.grants.get(user_id, role, agency_code)
            if existing is None or existing["include_sub"] != include_sub:
                if existing is not None:
                    r.grants.remove(user_id, role, agency_code)
                r.grants.add(
                    user_id=user_id,
                    role=role,
                    agency_code=agency_code,
                    include_sub=include_sub,
                    granted_at=now(),
                    granted_by=actor.id,
                )
                r.accounts.update(user_id, updated_at=now(), version=row["version"] + 1)
                granted = proto.grant(r.grants.get(user_id, role, agency_code))
                event = ev.RoleGranted(user_id=user_id, grant=granted, actor_id=actor.id)
                self.record(
                    uow,
                    actor,
                    "role.grant",
                    user_id,
                    event if row["realm"] == REALM else None,
                    role=role,
                    agency_code=agency_code,
                )
            msg = account_message(r, r.accounts.require(user_id))
            self.commit(uow)
        return msg

    def revoke(self, actor: Actor, user_id: str, role: str, agency_code: str | None) -> pb.User:
        """Revoke a role in one agency, or (agency_code None) in every agency."""
        with self.change() as uow:
            r = uow.repos
            row = r.accounts.require(user_id)
            if role == "admin" or not agency_code:
                require_platform_admin(actor)
            else:
                require_agency_admin(r, actor, agency_code)
            gone = r.grants.agencies_of(user_id, role, agency_code)
            if gone:
                r.grants.remove(user_id, role, agency_code)
                r.accounts.update(user_id, updated_at=now(), version=row["version"] + 1)
                for code in gone:
                    event = ev.RoleRevoked(
                        user_id=user_id,
                        role=model.ROLE_NUMBERS.get(role, 0),  # type: ignore[arg-type]
                        agency_code=code,
                        actor_id=actor.id,
                    )
                    self.record(
                        uow,
                        actor,
                        "role.revoke",
                        user_id,
                        event if row["realm"] == REALM else None,
                        role=role,
                        agency_code=code,
                    )
            msg = account_message(r, r.accounts.require(user_id))
            self.commit(uow)
        return msg

    def names_of(self, user_id: str, realm: str) -> list[str]:
        """The role names an account holds, in any agency."""
        with self.storage.read() as r:
            r.accounts.require(user_id, realm)
            return sorted({g["role"] for g in r.grants.of(user_id)})

    # --- realm roles ----------------------------------------------------------------------

    def realm_roles(self, realm: str) -> list[Any]:
        """The realm roles made through the admin API (the built-in ones are model.ROLE_NAMES)."""
        with self.storage.read() as r:
            return r.realm_roles.of(realm)

    def is_role(self, realm: str, name: str) -> bool:
        return name in model.ROLE_NUMBERS or any(
            row["name"] == name for row in self.realm_roles(realm)
        )

    def create_realm_role(self, actor: Actor, realm: str, name: str, description: str) -> str:
        require_platform_admin(actor)
        model.check_client_id(name, "name")  # same shape as a client id
        desc = model.check_name(description, "description", 300, False)
        if self.is_role(realm, name):
            raise AlreadyExists(f"role {name} already exists")
        with self.change() as uow:
            uow.repos.realm_roles.add(realm, name, desc)
            uow.repos.audit.write(actor.id, "role.create", name, remote_ip=actor.remote_ip)
            uow.commit()
        return name

    def update_realm_role(
        self, actor: Actor, realm: str, name: str, new_name: str, description: str
    ) -> None:
        """Keycloak's PUT roles/{name}: a realm role's name and description. The built-in
        roles (what the platform's rules name) keep both."""
        require_platform_admin(actor)
        if not self.is_role(realm, name):
            raise NotFound(f"role {name} not found")
        new_name = new_name or name
        desc = model.check_name(description, "description", 300, False)
        if name in model.ROLE_NUMBERS:
            if new_name != name:
                raise Invalid("name", "built-in roles cannot be renamed")
            if desc and desc != model.ROLE_DESCRIPTIONS[name]:
                raise Invalid("description", "built-in roles keep their description")
            return
        model.check_client_id(new_name, "name")
        if new_name != name and self.is_role(realm, new_name):
            raise AlreadyExists(f"role {new_name} already exists")
        with self.change() as uow:
            r = uow.repos
            r.realm_roles.update(realm, name, name=new_name, description=desc)
            if new_name != name:
                r.grants.rename_role(name, new_name)
            r.audit.write(actor.id, "role.update", name, remote_ip=actor.remote_ip, name=new_name)
            self.commit(uow)

    # --- composite roles ------------------------------------------------------------------

    def composites(self, realm: str, name: str) -> list[str]:
        if not self.is_role(realm, name):
            raise NotFound(f"role {name} not found")
        with self.storage.read() as r:
            return r.realm_roles.composites(realm).get(name, [])

    def change_composites(
        self, actor: Actor, realm: str, name: str, children: list[str], add: bool
    ) -> None:
        """Keycloak's roles/{name}/composites: holding `name` holds `children` too. Only
        platform admins; a role cannot contain itself, directly or through others."""
        require_platform_admin(actor)
        for role in (name, *children):
            if not self.is_role(realm, role):
                raise NotFound(f"role {role[:64]} not found")
        with self.change() as uow:
            r = uow.repos
            for child in children:
                if add:
                    graph = r.realm_roles.composites(realm)
                    if name in model.expand_roles({child}, graph) or child == name:
                        raise Invalid("composites", f"{child} would contain {name} (a cycle)")
                    r.realm_roles.add_composite(realm, name, child)
                else:
                    r.realm_roles.remove_composite(realm, name, child)
            action = "role.add_composites" if add else "role.remove_composites"
            r.audit.write(actor.id, action, name, remote_ip=actor.remote_ip, roles=children)
            self.commit(uow)

    def members(self, realm: str, name: str, first: int, size: int) -> list[Any]:
        if not self.is_role(realm, name):
            raise NotFound(f"role {name} not found")
        with self.storage.read() as r:
            return r.accounts.holding(realm, name, first, size)

    def delete_realm_role(self, actor: Actor, realm: str, name: str) -> None:
        if not self.is_role(realm, name):
            raise NotFound(f"role {name} not found")
        if name in model.ROLE_NUMBERS:
            raise Invalid("name", "built-in roles cannot be deleted")
        require_platform_admin(actor)
        with self.change() as uow:
            uow.repos.realm_roles.remove(realm, name)
            uow.repos.grants.remove_role(name)
            uow.repos.realm_roles.forget_composites(realm, name)
            uow.repos.audit.write(actor.id, "role.delete", name, remote_ip=actor.remote_ip)
            uow.commit()
