"""The admin REST subset python-keycloak's KeycloakAdmin uses, under /admin/realms/{realm}
(Bearer token of the master admin, or an admin/agency_admin of the realm). Keycloak's JSON
representations in and out; the directory use cases (in a worker thread) in between.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lgsp.api.identity.v1 import identity_pb2 as pb
from services.identity.domain import errors as de
from services.identity.domain import model
from services.identity.domain.access import MASTER, Actor, actor_from_claims
from services.identity.domain.directory import check_required_actions, fold, required_actions
from services.identity.domain.model import Status
from services.identity.entrypoints.web import (
    attribute,
    bearer,
    client_ctx,
    json_body,
    realm_of,
    text,
)
from services.identity.service_layer.clients import Clients
from services.identity.service_layer.group_tree import GroupTree
from services.identity.service_layer.groups import Groups
from services.identity.service_layer.roles import Roles
from services.identity.service_layer.sessions import Sessions
from services.identity.service_layer.sso import SingleSignOn
from services.identity.service_layer.users import Users

_NS = uuid.UUID("6c1b4a44-6a1f-4c1e-9d0e-2f0b7c1e9a11")
USER_ATTRIBUTES = ("agency_code", "position", "phone", "display_name")


def user_rep(row: Any) -> dict[str, Any]:
    attrs = {key: [row[key]] for key in USER_ATTRIBUTES if row[key]}
    return {
        "id": row["id"],
        "username": row["username"],
        "enabled": row["status"] != Status.DISABLED,
        "firstName": row["first_name"],
        "lastName": row["last_name"],
        "email": row["email"],
        "emailVerified": bool(row["email"]),
        "createdTimestamp": int(row["created_at"] * 1000),
        "totp": bool(row["totp_secret"]),
        "attributes": attrs,
        "requiredActions": required_actions(row),
    }


def role_rep(realm: str, name: str, description: str = "", rid: str = "") -> dict[str, Any]:
    return {
        "id": rid or str(uuid.uuid5(_NS, f"{realm}/{name}")),
        "name": name,
        "description": description,
        "composite": False,
        "clientRole": False,
        "containerId": realm,
    }


def group_rep(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "path": f"/{row['name']}",
        "subGroupCount": 0,
        "subGroups": [],
        "attributes": {"agency_code": [row["agency_code"]]} if row["agency_code"] else {},
    }


def client_rep(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "clientId": row["client_id"],
        "name": row["display_name"],
        "enabled": row["status"] == Status.ACTIVE,
        "publicClient": row["secret_hash"] is None,
        "redirectUris": list(row["redirect_uris"]),
        "serviceAccountsEnabled": bool(row["service_accounts"]),
        "directAccessGrantsEnabled": bool(row["direct_grants"]),
        "standardFlowEnabled": bool(row["redirect_uris"]),
        "protocol": "openid-connect",
        "attributes": {
            "agency_code": row["owner_agency_code"],
            "backchannel.logout.url": row["backchannel_logout_uri"],
            "backchannel.logout.session.required": "true",
            "use.jwks.string": "true" if row["jwks"] else "false",
            "jwks.string": row["jwks"],
        },
        "clientAuthenticatorType": "client-jwt" if row["jwks"] else "client-secret",
    }


def window(request: Request) -> tuple[int, int]:
    try:
        first = int(request.query_params.get("first", 0))
        size = int(request.query_params.get("max", 100))
    except ValueError:
        raise de.Invalid("first", "first and max must be integers") from None
    if first < 0 or size < 0:
        raise de.Invalid("first", "first and max must not be negative")
    return first, min(size, 1000)


def user_query(request: Request) -> dict[str, Any]:
    """Keycloak's user query parameters (users and users/count)."""
    q = request.query_params
    enabled = q.get("enabled")
    if enabled not in (None, "", "true", "false"):
        raise de.Invalid("enabled", "must be true or false")
    for key in ("username", "email", "search", "firstName", "lastName"):
        if len(q.get(key, "")) > 254:
            raise de.Invalid(key, "too long")
    attribute_query = q.get("q", "")  # Keycloak's "key:value" attribute search
    agency = ""
    if attribute_query:
        key, _, value = attribute_query.partition(":")
        if key != "agency_code":
            raise de.Invalid("q", "only agency_code:<code> is searchable")
        agency = value
    return {
        "username": q.get("username", "").lower(),
        "exact": q.get("exact", "").lower() == "true",
        "email": q.get("email", "").lower(),
        "search": fold(q["search"]) if q.get("search") else "",
        "enabled": (enabled == "true") if enabled else None,
        "first_name": q.get("firstName", "").lower(),
        "last_name": q.get("lastName", "").lower(),
        "agency_code": agency,
    }


def user_change(uid: str, body: dict[str, Any]) -> tuple[pb.User, list[str], dict[str, Any]]:
    """A Keycloak user representation (PUT) as (fields, update mask, name columns)."""
    attrs = body.get("attributes") or {}
    u = pb.User(id=uid)
    mask = []
    sources = [("email", body.get("email"))]
    for k in USER_ATTRIBUTES:
        value = attrs.get(k)
        sources.append((k, value[0] if isinstance(value, list) and value else value))
    for key, src in sources:
        if src is not None and isinstance(src, str):
            setattr(u, key, src)
            mask.append(key)
    extra: dict[str, Any] = {}
    for key, col in (("firstName", "first_name"), ("lastName", "last_name")):
        if isinstance(body.get(key), str):
            extra[col] = model.check_name(body[key], key, 100, required=False)
    return u, mask, extra


def group_id(body: dict[str, object]) -> str:
    """The `id` of a group POSTed to move it."""
    gid = body.get("id")
    if not isinstance(gid, str) or not 0 < len(gid) <= 64:
        raise de.Invalid("id", "must be a group id")
    return gid


class AdminRest:
    def __init__(
        self,
        users: Users,
        roles: Roles,
        groups: Groups,
        clients: Clients,
        sessions: Sessions,
        sso: SingleSignOn | None = None,
    ) -> None:
        self.sso = sso
        self.tree: GroupTree | None = None  # set by the app: moving a group to the top
        self.users = users
        self.roles = roles
        self.groups = groups
        self.clients = clients
        self.sessions = sessions

    def _location(self, realm: str, kind: str, ident: str) -> dict[str, str]:
        return {"Location": f"{self.sessions.base_url}/admin/realms/{realm}/{kind}/{ident}"}

    async def admin_actor(self, request: Request) -> tuple[str, Actor]:
        realm = realm_of(request)
        token = bearer(request)
        claims = await asyncio.to_thread(self.sessions.verify, None, token)
        actor = actor_from_claims(claims, client_ctx(request).remote_ip)
        if actor.realm == MASTER and actor.is_platform_admin:
            return realm, actor
        if actor.realm == realm and actor.roles & {"admin", "agency_admin"}:
            return realm, actor
        raise de.PermissionDenied("an admin token is required")

    # --- users ----------------------------------------------------------------------------

    async def users_(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        if request.method == "POST":
            return await self._create_user(realm, actor, await json_body(request))
        first, size = window(request)
        rows = await asyncio.to_thread(
            self.users.people, realm, first=first, size=size, **user_query(request)
        )
        return JSONResponse([user_rep(r) for r in rows])

    async def users_count(self, request: Request) -> Response:
        """Keycloak's users/count with the user query's filters."""
        realm, _ = await self.admin_actor(request)
        query = user_query(request)
        return JSONResponse(await asyncio.to_thread(self.users.count_people, realm, **query))

    async def _create_user(self, realm: str, actor: Actor, body: dict[str, Any]) -> Response:
        attrs = body.get("attributes") or {}
        u = pb.User(
            username=text(body, "username"),
            email=text(body, "email"),
            agency_code=attribute(attrs, "agency_code"),
            position=attribute(attrs, "position"),
            phone=attribute(attrs, "phone"),
            display_name=attribute(attrs, "display_name"),
        )
        if not u.display_name and not (body.get("firstName") or body.get("lastName")):
            u.display_name = u.username  # Keycloak does not require a name
        password, temporary = "", False
        for cred in body.get("credentials") or []:
            if isinstance(cred, dict) and cred.get("type", "password") == "password":
                password = str(cred.get("value", ""))
                temporary = bool(cred.get("temporary", False))
        actions = body.get("requiredActions")
        if actions is not None:
            check_required_actions(actions)  # before anything is created
        msg, _ = await asyncio.to_thread(
            self.users.create,
            actor,
            u,
            password=password,
            temporary=temporary,
            realm=realm,
            first_name=text(body, "firstName"),
            last_name=text(body, "lastName"),
            enabled=bool(body.get("enabled", True)),
        )
        if actions:
            await asyncio.to_thread(self.users.set_required_actions, actor, msg.id, actions, realm)
        return Response(status_code=201, headers=self._location(realm, "users", msg.id))

    async def user(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        uid = request.path_params["id"]
        if request.method == "GET":
            return JSONResponse(user_rep(await asyncio.to_thread(self.users.row, uid, realm)))
        if request.method == "DELETE":
            await asyncio.to_thread(self.users.delete, actor, uid, realm)
            return Response(status_code=204)
        body = await json_body(request)

        def put() -> None:
            row = self.users.row(uid, realm)
            u, mask, extra = user_change(uid, body)
            if mask or extra:
                self.users.update(actor, u, mask, extra=extra)
            if "enabled" in body:
                enabled = bool(body["enabled"])
                if enabled != (row["status"] != Status.DISABLED):
                    self.users.set_status(actor, uid, "", enabled)
            if "requiredActions" in body:
                self.users.set_required_actions(actor, uid, body["requiredActions"], realm)

        await asyncio.to_thread(put)
        return Response(status_code=204)

    async def reset_password(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        body = await json_body(request)
        value = body.get("value")
        if not isinstance(value, str) or not value:
            raise de.Invalid("value", "the new password is required")
        await asyncio.to_thread(
            self.users.reset_password,
            actor,
            request.path_params["id"],
            value,
            bool(body.get("temporary", True)),
            realm,
        )
        return Response(status_code=204)

    async def logout_user(self, request: Request) -> Response:
        """Keycloak's `POST users/{id}/logout`: an administrator ends every session of an
        account (its tokens are refused everywhere within a second)."""
        realm, actor = await self.admin_actor(request)
        gone = await asyncio.to_thread(
            self.users.end_sessions, actor, request.path_params["id"], realm
        )
        if self.sso is not None:
            await asyncio.to_thread(self.sso.notify_ended, realm, gone)
        return Response(status_code=204)

    # --- roles ----------------------------------------------------------------------------

    def _all_roles(self, realm: str) -> list[dict[str, Any]]:
        out = [
            role_rep(realm, name, model.ROLE_DESCRIPTIONS[name])
            for name in model.ROLE_NAMES.values()
        ]
        for r in self.roles.realm_roles(realm):
            out.append(role_rep(realm, r["name"], r["description"], r["id"]))
        return out

    async def roles_(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        if request.method == "GET":
            roles = await asyncio.to_thread(self._all_roles, realm)
            search = request.query_params.get("search", "")
            return JSONResponse([r for r in roles if search.lower() in r["name"]])
        body = await json_body(request)
        name = text(body, "name")
        description = text(body, "description")
        await asyncio.to_thread(self.roles.create_realm_role, actor, realm, name, description)
        return Response(status_code=201, headers=self._location(realm, "roles", name))

    async def role(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        name = request.path_params["name"]
        if request.method == "DELETE":
            await asyncio.to_thread(self.roles.delete_realm_role, actor, realm, name)
            return Response(status_code=204)
        roles = await asyncio.to_thread(self._all_roles, realm)
        match = [r for r in roles if r["name"] == name]
        if not match:
            raise de.NotFound(f"role {name} not found")
        return JSONResponse(match[0])

    async def user_roles(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        uid = request.path_params["id"]
        if request.method == "GET":
            held = await asyncio.to_thread(self.roles.names_of, uid, realm)
            return JSONResponse(
                [role_rep(realm, n, model.ROLE_DESCRIPTIONS.get(n, "")) for n in held]
            )
        body = await json_body(request, list)
        names: list[Any] = [r.get("name") for r in body if isinstance(r, dict)]
        if not names or not all(isinstance(n, str) and n for n in names):
            raise de.Invalid("name", "each role needs a name")

        def change() -> None:
            row = self.users.row(uid, realm)
            for n in names:
                if request.method == "POST":
                    self.roles.grant(actor, uid, n, row["agency_code"] or "")
                else:
                    self.roles.revoke(actor, uid, n, None)

        await asyncio.to_thread(change)
        return Response(status_code=204)

    # --- groups ---------------------------------------------------------------------------

    async def groups_(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        if request.method == "POST":
            body = await json_body(request)
            if body.get("id") is not None and self.tree is not None:  # moved to the top
                gid = group_id(body)
                await asyncio.to_thread(self.tree.move, actor, realm, gid, None)
                return Response(status_code=204)
            g = pb.Group(
                name=text(body, "name"),
                agency_code=attribute(body.get("attributes") or {}, "agency_code"),
            )
            msg = await asyncio.to_thread(self.groups.create, actor, g, "", realm)
            return Response(status_code=201, headers=self._location(realm, "groups", msg.id))
        first, size = window(request)
        search = request.query_params.get("search", "")
        rows = await asyncio.to_thread(self.groups.search, realm, search, first, size)
        return JSONResponse([group_rep(r) for r in rows])

    async def group(self, request: Request) -> Response:
        _, actor = await self.admin_actor(request)
        gid = request.path_params["id"]
        if request.method == "DELETE":
            await asyncio.to_thread(self.groups.delete, actor, gid)
            return Response(status_code=204)
        if request.method == "PUT":
            body = await json_body(request)
            change = pb.Group(id=gid, name=text(body, "name"))
            await asyncio.to_thread(self.groups.update, actor, change, ["name"])
            return Response(status_code=204)
        return JSONResponse(group_rep(await asyncio.to_thread(self.groups.row, gid)))

    async def group_members(self, request: Request) -> Response:
        _ = await self.admin_actor(request)
        first, size = window(request)
        rows = await asyncio.to_thread(self.groups.members, request.path_params["id"], first, size)
        return JSONResponse([user_rep(r) for r in rows])

    async def user_groups(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        uid = request.path_params["id"]
        if "group_id" in request.path_params:
            gid = request.path_params["group_id"]
            add, remove = ([uid], []) if request.method == "PUT" else ([], [uid])
            await asyncio.to_thread(self.groups.change_members, actor, gid, add, remove)
            return Response(status_code=204)
        rows = await asyncio.to_thread(self.groups.of_user, uid, realm)
        return JSONResponse([group_rep(r) for r in rows])

    # --- clients --------------------------------------------------------------------------

    async def clients_(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        if request.method == "POST":
            body = await json_body(request)
            attrs = body.get("attributes") or {}
            public = bool(body.get("publicClient", False))
            secret = None if public else (text(body, "secret") or "")
            redirect = body.get("redirectUris") or []
            if not isinstance(redirect, list) or not all(isinstance(u, str) for u in redirect):
                raise de.Invalid("redirectUris", "must be a list of URIs")
            c = pb.ClientSystem(
                client_id=text(body, "clientId"),
                display_name=text(body, "name") or text(body, "clientId"),
                owner_agency_code=attribute(attrs, "agency_code"),
            )
            backchannel = attribute(attrs, "backchannel.logout.url")

            def create() -> str:
                _, _, internal = self.clients.create(
                    actor,
                    c,
                    realm=realm,
                    secret=secret,
                    redirect_uris=redirect,
                    service_accounts=bool(body.get("serviceAccountsEnabled", False)),
                    direct_grants=bool(body.get("directAccessGrantsEnabled", True)),
                )
                if backchannel:
                    self.clients.configure(
                        actor, realm, internal, backchannel_logout_uri=backchannel
                    )
                return internal

            internal = await asyncio.to_thread(create)
            return Response(status_code=201, headers=self._location(realm, "clients", internal))
        cid = request.query_params.get("clientId") or ""
        rows = await asyncio.to_thread(self.clients.rows, realm, cid)
        return JSONResponse([client_rep(r) for r in rows])

    async def client(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        internal = request.path_params["id"]
        if request.method == "DELETE":
            await asyncio.to_thread(self.clients.delete, actor, internal, realm)
            return Response(status_code=204)
        row = await asyncio.to_thread(self.clients.by_internal_id, realm, internal)
        return JSONResponse(client_rep(row))

    async def client_secret(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        row = await asyncio.to_thread(self.clients.by_internal_id, realm, request.path_params["id"])
        if request.method == "POST":
            secret, _ = await asyncio.to_thread(
                self.clients.rotate_secret, actor, row["client_id"], realm
            )
            return JSONResponse({"type": "secret", "value": secret})
        # Only the secret's hash is stored: it is shown once, when created or regenerated.
        return JSONResponse({"type": "secret", "value": None})

    async def service_account_user(self, request: Request) -> Response:
        realm, _ = await self.admin_actor(request)
        row = await asyncio.to_thread(
            self.clients.service_account, realm, request.path_params["id"]
        )
        return JSONResponse(user_rep(row))
