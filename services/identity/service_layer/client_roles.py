"""Client roles (Keycloak's roles of one client): made, listed and deleted per client,
granted to accounts and to groups (every member holds them), carried in tokens as
`resource_access` (domain/sessions.py `claims`). Only platform admins change them: a client
system is the province's, not one agency's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.identity.adapters.client_roles import GROUP, USER
from services.identity.adapters.unit_of_work import Repositories
from services.identity.domain import model
from services.identity.domain.access import Actor, require_platform_admin
from services.identity.domain.errors import AlreadyExists, Invalid, NotFound
from services.identity.service_layer.common import DirectoryUseCases, Row

KINDS = (USER, GROUP)


class ClientRoles(DirectoryUseCases):
    @staticmethod
    def _client(r: Repositories, realm: str, internal_id: str) -> Row:
        return r.clients.by_internal_id(realm, internal_id)

    @staticmethod
    def _role(r: Repositories, realm: str, client: Row, name: str) -> Row:
        row = r.client_roles.get(realm, client["client_id"], name)
        if row is None:
            raise NotFound(f"role {name[:64]} of client {client['client_id']} not found")
        return row

    def create(
        self, actor: Actor, realm: str, internal_id: str, name: str, description: str
    ) -> None:
        require_platform_admin(actor)
        model.check_client_id(name, "name")  # same shape as a realm role
        desc = model.check_name(description, "description", 300, False)
        with self.change() as uow:
            r = uow.repos
            client = self._client(r, realm, internal_id)
            if r.client_roles.get(realm, client["client_id"], name) is not None:
                raise AlreadyExists(f"role {name} already exists")
            r.client_roles.add(realm, client["client_id"], name, desc)
            self.record(uow, actor, "role.create", f"{client['client_id']}/{name}", None)
            self.commit(uow)

    def delete(self, actor: Actor, realm: str, internal_id: str, name: str) -> None:
        require_platform_admin(actor)
        with self.change() as uow:
            r = uow.repos
            client = self._client(r, realm, internal_id)
            r.client_roles.remove(self._role(r, realm, client, name)["id"])
            self.record(uow, actor, "role.delete", f"{client['client_id']}/{name}", None)
            self.commit(uow)

    def of_client(self, realm: str, internal_id: str) -> tuple[Row, list[Row]]:
        with self.storage.read() as r:
            client = self._client(r, realm, internal_id)
            return client, r.client_roles.of_client(realm, client["client_id"])

    def one(self, realm: str, internal_id: str, name: str) -> tuple[Row, Row]:
        with self.storage.read() as r:
            client = self._client(r, realm, internal_id)
            return client, self._role(r, realm, client, name)

    def change_grants(
        self,
        actor: Actor,
        realm: str,
        kind: str,
        holder: str,
        internal_id: str,
        names: Sequence[str],
        grant: bool,
    ) -> None:
        """Grant (or revoke) roles of a client to an account or a group; all or nothing."""
        require_platform_admin(actor)
        if kind not in KINDS:
            raise Invalid("holder", "an account or a group")
        with self.change() as uow:
            r = uow.repos
            if kind == USER:
                r.accounts.require(holder, realm)
            else:
                r.groups.require(holder)
            client = self._client(r, realm, internal_id)
            for name in names:
                role = self._role(r, realm, client, name)
                if grant:
                    r.client_roles.grant(role["id"], kind, holder)
                else:
                    r.client_roles.revoke(role["id"], kind, holder)
            action = "role.grant" if grant else "role.revoke"
            self.record(
                uow, actor, action, holder, None, client=client["client_id"], roles=list(names)
            )
            self.commit(uow)

    def held(self, realm: str, kind: str, holder: str, internal_id: str) -> tuple[Row, list[Row]]:
        with self.storage.read() as r:
            if kind == USER:
                r.accounts.require(holder, realm)
            else:
                r.groups.require(holder)
            client = self._client(r, realm, internal_id)
            return client, r.client_roles.held(kind, holder, realm, client["client_id"])

    def members(self, realm: str, internal_id: str, name: str) -> list[Any]:
        with self.storage.read() as r:
            client = self._client(r, realm, internal_id)
            role = self._role(r, realm, client, name)
            return [r.accounts.one(uid) for uid in r.client_roles.holders(role["id"])]

    # --- composite client roles -----------------------------------------------------------

    def composites(self, realm: str, internal_id: str, name: str) -> list[tuple[Row, Row]]:
        """(client, role) of each child of a client role."""
        with self.storage.read() as r:
            client = self._client(r, realm, internal_id)
            role = self._role(r, realm, client, name)
            out = []
            for child in r.client_roles.children(role["id"]):
                owner = r.clients.get(realm, child["client_id"])
                out.append((owner if owner is not None else {"id": ""}, child))
            return out

    def change_composites(
        self,
        actor: Actor,
        realm: str,
        internal_id: str,
        name: str,
        children: Sequence[dict[str, Any]],
        add: bool,
    ) -> None:
        """Keycloak's clients/{id}/roles/{name}/composites: holding the role holds its child
        client roles too (of any client in the realm). Only platform admins; all or nothing;
        a role cannot contain itself, directly or through others. Realm roles as children
        are refused: a realm role is held in an agency, a client role in none."""
        require_platform_admin(actor)
        with self.change() as uow:
            r = uow.repos
            client = self._client(r, realm, internal_id)
            parent = self._role(r, realm, client, name)
            for rep in children:
                child = self._child(r, realm, client, rep)
                if add:
                    graph = r.client_roles.composites(realm)
                    if child["id"] == parent["id"] or parent["id"] in model.expand_roles(
                        {child["id"]}, graph
                    ):
                        raise Invalid(
                            "composites", f"{child['name']} would contain {name} (a cycle)"
                        )
                    r.client_roles.add_composite(parent["id"], child["id"])
                else:
                    r.client_roles.remove_composite(parent["id"], child["id"])
            action = "role.add_composites" if add else "role.remove_composites"
            self.record(
                uow,
                actor,
                action,
                f"{client['client_id']}/{name}",
                None,
                roles=[str(rep.get("name") or rep.get("id")) for rep in children],
            )
            self.commit(uow)

    def _child(self, r: Repositories, realm: str, client: Row, rep: dict[str, Any]) -> Row:
        """The client role a RoleRepresentation names: by `id`, else by `name` in the client
        `containerId` (default: the parent's client)."""
        if rep.get("clientRole") is False:
            raise Invalid("composites", "only client roles can be children of a client role")
        rid, name = rep.get("id"), rep.get("name")
        if rid is not None:
            if not isinstance(rid, str) or len(rid) > 64:
                raise Invalid("composites", "a role id is a string")
            row = r.client_roles.by_id(realm, rid)
            if row is None:
                raise NotFound(f"client role {rid} not found")
            return row
        if not isinstance(name, str) or not name or len(name) > 64:
            raise Invalid("composites", "each role needs an id or a name")
        container = rep.get("containerId")
        if container is not None and not isinstance(container, str):
            raise Invalid("composites", "containerId is a client id")
        owner = self._client(r, realm, container) if container else client
        return self._role(r, realm, owner, name)
