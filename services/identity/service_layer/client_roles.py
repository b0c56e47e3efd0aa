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
