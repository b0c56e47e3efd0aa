"""Keycloak's client-role admin REST (issue 19): a client's roles, and their mappings to
accounts and groups, as python-keycloak's create_client_role, get_client_roles,
assign_client_role, get_client_roles_of_user, assign_group_client_roles … call them."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.identity.adapters.client_roles import GROUP, USER
from services.identity.domain import errors as de
from services.identity.entrypoints.admin_realm import AdminCheck
from services.identity.entrypoints.admin_rest import user_rep
from services.identity.entrypoints.web import json_body, text
from services.identity.service_layer.client_roles import ClientRoles


def client_role_rep(client: Any, row: Any, composite: bool = False) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "composite": composite,
        "clientRole": True,
        "containerId": client["id"],
    }


class AdminClientRoles:
    def __init__(self, admin_actor: AdminCheck, roles: ClientRoles) -> None:
        self.admin_actor = admin_actor
        self.roles = roles

    async def roles_(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        internal = request.path_params["id"]
        if request.method == "POST":
            body = await json_body(request)
            name = text(body, "name")
            await asyncio.to_thread(
                self.roles.create, actor, realm, internal, name, text(body, "description")
            )
            location = f"{request.url.replace(query='')}/{name}"
            return Response(status_code=201, headers={"Location": location})
        client, rows = await asyncio.to_thread(self.roles.of_client, realm, internal)
        return JSONResponse([client_role_rep(client, r) for r in rows])

    async def role(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        internal, name = request.path_params["id"], request.path_params["role_name"]
        if request.method == "DELETE":
            await asyncio.to_thread(self.roles.delete, actor, realm, internal, name)
            return Response(status_code=204)
        client, row = await asyncio.to_thread(self.roles.one, realm, internal, name)
        return JSONResponse(client_role_rep(client, row))

    async def members(self, request: Request) -> Response:
        realm, _ = await self.admin_actor(request)
        rows = await asyncio.to_thread(
            self.roles.members, realm, request.path_params["id"], request.path_params["role_name"]
        )
        return JSONResponse([user_rep(r) for r in rows])

    async def composites(self, request: Request) -> Response:
        """Keycloak's clients/{id}/roles/{name}/composites (client roles as children)."""
        realm, actor = await self.admin_actor(request)
        internal, name = request.path_params["id"], request.path_params["role_name"]
        if request.method == "GET":
            rows = await asyncio.to_thread(self.roles.composites, realm, internal, name)
            return JSONResponse([client_role_rep(c, r) for c, r in rows])
        body = await json_body(request, list)
        if not body or len(body) > 100 or not all(isinstance(r, dict) for r in body):
            raise de.Invalid("composites", "a list of 1 to 100 roles")
        await asyncio.to_thread(
            self.roles.change_composites,
            actor,
            realm,
            internal,
            name,
            body,
            request.method == "POST",
        )
        return Response(status_code=204)

    async def user_mappings(self, request: Request) -> Response:
        return await self._mappings(request, USER)

    async def group_mappings(self, request: Request) -> Response:
        return await self._mappings(request, GROUP)

    async def _mappings(self, request: Request, kind: str) -> Response:
        realm, actor = await self.admin_actor(request)
        holder, internal = request.path_params["id"], request.path_params["client_id"]
        if request.method == "GET":
            client, rows = await asyncio.to_thread(self.roles.held, realm, kind, holder, internal)
            return JSONResponse([client_role_rep(client, r) for r in rows])
        body = await json_body(request, list)
        given = [r.get("name") for r in body if isinstance(r, dict)]
        if not given or not all(isinstance(n, str) and n for n in given):
            raise de.Invalid("name", "each role needs a name")
        names = [str(n) for n in given]
        await asyncio.to_thread(
            self.roles.change_grants,
            actor,
            realm,
            kind,
            holder,
            internal,
            names,
            request.method == "POST",
        )
        return Response(status_code=204)
