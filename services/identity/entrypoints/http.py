"""The identity service's HTTP app (Starlette): the OpenID Connect provider on Keycloak's
paths (oidc.py), the admin REST subset python-keycloak's KeycloakAdmin uses (admin_rest.py)
and /healthz. Domain refusals become HTTP answers here (web.py): RFC 6749 error JSON for
sign-ins and tokens, `{"errorMessage", "field"}` for the directory.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.identity.adapters.unit_of_work import Storage
from services.identity.domain.errors import DomainError
from services.identity.entrypoints.admin_client_roles import AdminClientRoles
from services.identity.entrypoints.admin_groups import AdminGroupTree
from services.identity.entrypoints.admin_realm import AdminRealm
from services.identity.entrypoints.admin_rest import AdminRest
from services.identity.entrypoints.authorize import AuthorizationEndpoint
from services.identity.entrypoints.login_page import HTML_HEADERS
from services.identity.entrypoints.oidc import OidcEndpoints
from services.identity.entrypoints.web import OAuthError, directory_error, oauth_error
from services.identity.service_layer.audit_trail import AuditTrail
from services.identity.service_layer.client_auth import ClientAssertions
from services.identity.service_layer.client_roles import ClientRoles
from services.identity.service_layer.clients import Clients
from services.identity.service_layer.grants import Grants
from services.identity.service_layer.group_tree import GroupTree
from services.identity.service_layer.groups import Groups
from services.identity.service_layer.keys import KeyStore
from services.identity.service_layer.logins import Logins
from services.identity.service_layer.realm_settings import RealmPolicies
from services.identity.service_layer.roles import Roles
from services.identity.service_layer.sessions import Sessions
from services.identity.service_layer.sso import SingleSignOn
from services.identity.service_layer.users import Users


class HtmlHardening:
    """ASGI middleware: every HTML answer of identity (login page, error pages, whatever
    route or handler made it) gets the hardening headers it does not set itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").startswith("text/html"):
                    for name, value in HTML_HEADERS.items():
                        if name not in headers:
                            headers[name] = value
            await send(message)

        await self.app(scope, receive, sending)


class OidcApp:
    """Builds the Starlette app over the identity use cases."""

    def __init__(
        self,
        storage: Storage,
        *,
        keys: KeyStore,
        logins: Logins,
        grants: Grants,
        sessions: Sessions,
        users: Users,
        roles: Roles,
        groups: Groups,
        clients: Clients,
        sso: SingleSignOn,
    ) -> None:
        self.storage = storage
        assertions = ClientAssertions(storage, sessions.base_url)
        self.oidc = OidcEndpoints(keys, grants, sessions, clients, sso, assertions)
        self.authorize = AuthorizationEndpoint(keys, logins, grants, sessions, clients, sso, users)
        self.admin = AdminRest(users, roles, groups, clients, sessions, sso)
        self.realm = AdminRealm(
            self.admin.admin_actor,
            users,
            roles,
            clients,
            sessions,
            sso,
            AuditTrail(storage),
            grants.policies or RealmPolicies(storage),
        )
        self.client_roles = AdminClientRoles(self.admin.admin_actor, ClientRoles(storage))
        self.admin.tree = GroupTree(storage)
        self.group_tree = AdminGroupTree(self.admin.admin_actor, self.admin.tree, sessions.base_url)

    async def healthz(self, request: Request) -> Response:
        await asyncio.to_thread(self.storage.ping)
        return JSONResponse({"status": "ok"})

    def build(self) -> Starlette:
        oidc = "/realms/{realm}/protocol/openid-connect"
        admin = "/admin/realms/{realm}"
        o, a, m, c = self.oidc, self.admin, self.realm, self.client_roles
        g = self.group_tree
        routes = [
            Route("/healthz", self.healthz),
            Route("/realms/{realm}", o.realm_info),
            Route("/realms/{realm}/.well-known/openid-configuration", o.discovery),
            Route(f"{oidc}/certs", o.certs),
            Route(f"{oidc}/auth", self.authorize.auth, methods=["GET", "POST"]),
            Route(f"{oidc}/token", o.token, methods=["POST"]),
            Route(f"{oidc}/token/introspect", o.introspect, methods=["POST"]),
            Route(f"{oidc}/revoke", o.revoke, methods=["POST"]),
            Route(f"{oidc}/userinfo", o.userinfo, methods=["GET", "POST"]),
            Route(f"{oidc}/logout", o.logout, methods=["GET", "POST"]),
            Route(f"{admin}/users", a.users_, methods=["GET", "POST"]),
            Route(f"{admin}/users/count", a.users_count),
            Route(f"{admin}/users/{{id}}", a.user, methods=["GET", "PUT", "DELETE"]),
            Route(f"{admin}/users/{{id}}/reset-password", a.reset_password, methods=["PUT"]),
            Route(f"{admin}/users/{{id}}/logout", a.logout_user, methods=["POST"]),
            Route(
                f"{admin}/users/{{id}}/role-mappings/realm",
                a.user_roles,
                methods=["GET", "POST", "DELETE"],
            ),
            Route(f"{admin}/users/{{id}}/groups", a.user_groups),
            Route(
                f"{admin}/users/{{id}}/groups/{{group_id}}",
                a.user_groups,
                methods=["PUT", "DELETE"],
            ),
            Route(f"{admin}/roles", a.roles_, methods=["GET", "POST"]),
            Route(f"{admin}/roles/{{name}}", a.role, methods=["GET", "DELETE"]),
            Route(f"{admin}/groups", a.groups_, methods=["GET", "POST"]),
            Route(f"{admin}/groups/{{id}}", g.group, methods=["GET"]),  # with path, subgroups
            Route(f"{admin}/groups/{{id}}", a.group, methods=["PUT", "DELETE"]),
            Route(f"{admin}/groups/{{id}}/children", g.children, methods=["GET", "POST"]),
            Route(f"{admin}/group-by-path/{{path:path}}", g.by_path),
            Route(
                f"{admin}/groups/{{id}}/role-mappings/realm",
                g.realm_roles,
                methods=["GET", "POST", "DELETE"],
            ),
            Route(f"{admin}/groups/{{id}}/members", a.group_members),
            Route(f"{admin}/clients", a.clients_, methods=["GET", "POST"]),
            Route(f"{admin}/clients/{{id}}", a.client, methods=["GET", "DELETE"]),
            Route(
                f"{admin}/clients/{{id}}/client-secret",
                a.client_secret,
                methods=["GET", "POST"],
            ),
            Route(f"{admin}/clients/{{id}}/service-account-user", a.service_account_user),
            # admin_realm.py: what issue 19 added
            Route("/admin/serverinfo", m.server_info),
            Route(admin, m.realm, methods=["GET", "PUT"]),
            Route(f"{admin}/events", m.events),
            Route(f"{admin}/admin-events", m.admin_events),
            Route(f"{admin}/users/{{id}}/sessions", m.user_sessions),
            Route(f"{admin}/clients/{{id}}/user-sessions", m.client_sessions),
            Route(f"{admin}/users/{{id}}/credentials", m.credentials),
            Route(
                f"{admin}/users/{{id}}/credentials/{{credential_id}}",
                m.credentials,
                methods=["DELETE"],
            ),
            Route(f"{admin}/roles/{{name}}/users", m.role_members),
            Route(
                f"{admin}/roles/{{name}}/composites",
                m.composites,
                methods=["GET", "POST", "DELETE"],
            ),
            Route(f"{admin}/roles/{{name}}", m.update_role, methods=["PUT"]),
            Route(f"{admin}/clients/{{id}}", m.update_client, methods=["PUT"]),
            Route(f"{admin}/clients/{{id}}/roles", c.roles_, methods=["GET", "POST"]),
            Route(f"{admin}/clients/{{id}}/roles/{{role_name}}", c.role, methods=["GET", "DELETE"]),
            Route(f"{admin}/clients/{{id}}/roles/{{role_name}}/users", c.members),
            Route(
                f"{admin}/clients/{{id}}/roles/{{role_name}}/composites",
                c.composites,
                methods=["GET", "POST", "DELETE"],
            ),
            Route(
                f"{admin}/users/{{id}}/role-mappings/clients/{{client_id}}",
                c.user_mappings,
                methods=["GET", "POST", "DELETE"],
            ),
            Route(
                f"{admin}/groups/{{id}}/role-mappings/clients/{{client_id}}",
                c.group_mappings,
                methods=["GET", "POST", "DELETE"],
            ),
            Route(f"{admin}/client-scopes", m.scopes),
            Route(f"{admin}/client-scopes/{{scope_id}}", m.scope),
            Route(f"{admin}/client-scopes/{{scope_id}}/protocol-mappers/models", m.scope),
        ]
        handlers: dict[Any, Any] = {
            OAuthError: lambda r, e: oauth_error(e),
            DomainError: lambda r, e: directory_error(e),
        }
        return Starlette(
            routes=routes, exception_handlers=handlers, middleware=[Middleware(HtmlHardening)]
        )
