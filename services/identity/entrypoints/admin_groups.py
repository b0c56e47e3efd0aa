"""Keycloak's group tree admin REST (issue 19): a group with its path and subgroups,
children (list, create), group-by-path, and a group's realm-role mappings."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.identity.domain import errors as de
from services.identity.domain import model
from services.identity.entrypoints.admin_realm import AdminCheck
from services.identity.entrypoints.admin_rest import group_id, role_rep
from services.identity.entrypoints.web import json_body, text
from services.identity.service_layer.group_tree import GroupTree, group_path_rep


class AdminGroupTree:
    def __init__(self, admin_actor: AdminCheck, tree: GroupTree, base_url: str) -> None:
        self.admin_actor = admin_actor
        self.tree = tree
        self.base_url = base_url

    async def group(self, request: Request) -> Response:
        await self.admin_actor(request)
        row, path, children = await asyncio.to_thread(self.tree.view, request.path_params["id"])
        rep = group_path_rep(row, path, len(children))
        rep["subGroups"] = [group_path_rep(c, f"{path}/{c['name']}", 0) for c in children]
        return JSONResponse(rep)

    async def children(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        gid = request.path_params["id"]
        if request.method == "POST":
            body = await json_body(request)
            if body.get("id") is not None:  # an existing group moves here (Keycloak)
                await asyncio.to_thread(self.tree.move, actor, realm, group_id(body), gid)
                return Response(status_code=204)
            child = await asyncio.to_thread(
                self.tree.create_child, actor, gid, text(body, "name"), text(body, "description")
            )
            location = f"{self.base_url}/admin/realms/{realm}/groups/{child}"
            return Response(status_code=201, headers={"Location": location})
        rows = await asyncio.to_thread(self.tree.children, gid)
        return JSONResponse([group_path_rep(c, p, 0) for c, p in rows])

    async def by_path(self, request: Request) -> Response:
        realm, _ = await self.admin_actor(request)
        gid = await asyncio.to_thread(self.tree.by_path, realm, request.path_params["path"])
        row, path, children = await asyncio.to_thread(self.tree.view, gid)
        return JSONResponse(group_path_rep(row, path, len(children)))

    async def realm_roles(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        gid = request.path_params["id"]
        if request.method == "GET":
            names = await asyncio.to_thread(self.tree.realm_roles, gid)
            return JSONResponse(
                [role_rep(realm, n, model.ROLE_DESCRIPTIONS.get(n, "")) for n in names]
            )
        body = await json_body(request, list)
        given = [r.get("name") for r in body if isinstance(r, dict)]
        if not given or not all(isinstance(n, str) and n for n in given):
            raise de.Invalid("name", "each role needs a name")
        await asyncio.to_thread(
            self.tree.change_realm_roles,
            actor,
            gid,
            [str(n) for n in given],
            request.method == "POST",
        )
        return Response(status_code=204)
