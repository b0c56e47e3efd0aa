"""The rest of the Keycloak admin REST that administrators script (issue 19): the realm
representation, server info, sign-in events and admin events (from identity's audit log),
user and client sessions, credentials, role members, role and client updates, and the client
scopes with their protocol mappers. Keycloak's JSON out; the use cases in a worker thread.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.identity.domain import errors as de
from services.identity.domain import model
from services.identity.domain import sessions as rules
from services.identity.domain.access import MASTER, Actor, actor_from_claims
from services.identity.entrypoints.admin_rest import client_rep, role_rep, user_rep, window
from services.identity.entrypoints.web import attribute, bearer, client_ctx, json_body, text
from services.identity.service_layer.audit_trail import SIGN_IN_ACTIONS, AuditTrail
from services.identity.service_layer.clients import Clients
from services.identity.service_layer.realm_settings import RealmPolicies
from services.identity.service_layer.roles import Roles
from services.identity.service_layer.sessions import Sessions
from services.identity.service_layer.sso import SingleSignOn
from services.identity.service_layer.users import Users

_NS = uuid.UUID("0f4d2b3e-5a2c-4d8e-9b1a-7c3e2f1a0b9d")
AdminCheck = Callable[[Request], Awaitable[tuple[str, Actor]]]

# Keycloak's event types for identity's sign-in audit rows (action, ok?) → type.
_EVENT_TYPES = {
    "login": ("LOGIN", "LOGIN_ERROR"),
    "login.sso": ("LOGIN", "LOGIN_ERROR"),
    "refresh": ("REFRESH_TOKEN", "REFRESH_TOKEN_ERROR"),
    "refresh.reuse": ("REFRESH_TOKEN_ERROR", "REFRESH_TOKEN_ERROR"),
    "code.replay": ("CODE_TO_TOKEN_ERROR", "CODE_TO_TOKEN_ERROR"),
    "logout": ("LOGOUT", "LOGOUT_ERROR"),
}
# Admin event resource types for the audit log's change actions ("user.create" → USER).
_RESOURCES = {
    "user": ("USER", "users"),
    "role": ("REALM_ROLE", "roles"),
    "group": ("GROUP", "groups"),
    "client": ("CLIENT", "clients"),
    "agency": ("REALM", "agencies"),
    "app_password": ("USER", "users"),
    "realm": ("REALM", "realms"),
}


def event_rep(realm: str, row: Any) -> dict[str, Any]:
    ok = row["outcome"] == "ok"
    details = dict(row["details"] or {})
    out: dict[str, Any] = {
        "time": int(row["at"] * 1000),
        "type": _EVENT_TYPES.get(row["action"], ("LOGIN", "LOGIN_ERROR"))[0 if ok else 1],
        "realmId": realm,
        "clientId": details.pop("client_id", ""),
        "userId": row["actor"] if row["actor"] != "system" else "",
        "sessionId": details.pop("session", ""),
        "ipAddress": row["remote_ip"],
        "details": {k: str(v) for k, v in details.items()},
    }
    if not ok:
        out["error"] = row["outcome"]
    return out


def admin_event_rep(realm: str, row: Any) -> dict[str, Any]:
    kind, _, verb = row["action"].partition(".")
    resource, path = _RESOURCES.get(kind, (kind.upper(), kind))
    operation = {"create": "CREATE", "update": "UPDATE", "delete": "DELETE"}.get(verb, "ACTION")
    return {
        "time": int(row["at"] * 1000),
        "realmId": realm,
        "authDetails": {"realmId": realm, "userId": row["actor"], "ipAddress": row["remote_ip"]},
        "operationType": operation,
        "resourceType": resource,
        "resourcePath": f"{path}/{row['subject']}",
        "details": {"action": row["action"], **{k: str(v) for k, v in row["details"].items()}},
    }


def _scope(name: str, description: str, mappers: list[dict[str, Any]]) -> dict[str, Any]:
    sid = str(uuid.uuid5(_NS, f"scope/{name}"))
    for m in mappers:
        m["id"] = str(uuid.uuid5(_NS, f"mapper/{name}/{m['name']}"))
        m["protocol"] = "openid-connect"
        m["consentRequired"] = False
    return {
        "id": sid,
        "name": name,
        "description": description,
        "protocol": "openid-connect",
        "attributes": {"include.in.token.scope": "true", "display.on.consent.screen": "false"},
        "protocolMappers": mappers,
    }


def _mapper(name: str, kind: str, claim: str, id_token: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "protocolMapper": kind,
        "config": {
            "claim.name": claim,
            "access.token.claim": "true",
            "id.token.claim": "true" if id_token else "false",
            "userinfo.token.claim": "true" if id_token else "false",
            "jsonType.label": "String",
        },
    }


def client_scopes() -> list[dict[str, Any]]:
    """The scopes every token of this provider is made of, and what each puts in it
    (domain/sessions.py `claims` is the one place that decides it: this describes it)."""
    return [
        _scope(
            "profile",
            "OpenID Connect built-in scope: profile",
            [
                _mapper("username", "oidc-usermodel-property-mapper", "preferred_username"),
                _mapper("full name", "oidc-full-name-mapper", "name"),
                _mapper("given name", "oidc-usermodel-property-mapper", "given_name"),
                _mapper("family name", "oidc-usermodel-property-mapper", "family_name"),
                _mapper("agency code", "oidc-usermodel-attribute-mapper", "agency_code"),
            ],
        ),
        _scope(
            "email",
            "OpenID Connect built-in scope: email",
            [_mapper("email", "oidc-usermodel-property-mapper", "email")],
        ),
        _scope(
            "roles",
            "Realm roles and the agencies they are held in",
            [
                _mapper(
                    "realm roles", "oidc-usermodel-realm-role-mapper", "realm_access.roles", False
                ),
                _mapper("agency roles", "oidc-usermodel-attribute-mapper", "agency_roles", False),
            ],
        ),
        _scope(
            "acr",
            "How the user signed in",
            [
                _mapper("acr loa level", "oidc-acr-mapper", "acr"),
                _mapper("authentication methods", "oidc-amr-mapper", "amr"),
            ],
        ),
        _scope("offline_access", "OpenID Connect built-in scope: offline_access", []),
    ]


class AdminRealm:
    def __init__(
        self,
        admin_actor: AdminCheck,
        users: Users,
        roles: Roles,
        clients: Clients,
        sessions: Sessions,
        sso: SingleSignOn,
        audit: AuditTrail,
        policies: RealmPolicies,
    ) -> None:
        self.admin_actor = admin_actor
        self.users = users
        self.roles = roles
        self.clients = clients
        self.sessions = sessions
        self.sso = sso
        self.audit = audit
        self.policies = policies

    # --- the realm and the server ---------------------------------------------------------

    async def realm(self, request: Request) -> Response:
        """The realm representation with the settings that apply; PUT (update_realm)
        changes those of them domain/realm_settings.py lists, validated, audited as an admin
        event, in force from the next request."""
        realm, actor = await self.admin_actor(request)
        current = await asyncio.to_thread(self.policies.current, realm)
        fixed = self._fixed(realm)
        if request.method == "PUT":
            body = await json_body(request)
            await asyncio.to_thread(self.policies.update, actor, realm, body, fixed)
            return Response(status_code=204)
        return JSONResponse({**fixed, **current.representation()})

    @staticmethod
    def _fixed(realm: str) -> dict[str, Any]:
        """The representation's fields that are not settable here."""
        return {
            "id": realm,
            "realm": realm,
            "displayName": "Hà Tĩnh" if realm != MASTER else "master",
            "enabled": True,
            "sslRequired": "external",
            "accessCodeLifespan": rules.CODE_TTL,
            "clientSessionIdleTimeout": rules.REFRESH_TTL,
            "revokeRefreshToken": True,
            "refreshTokenMaxReuse": 0,
            "otpPolicyType": "totp",
            "otpPolicyAlgorithm": "HmacSHA1",
            "otpPolicyDigits": 6,
            "otpPolicyPeriod": 30,
            "otpPolicyLookAheadWindow": 1,
            "eventsEnabled": True,
            "adminEventsEnabled": True,
            "defaultSignatureAlgorithm": "RS256",
        }

    async def server_info(self, request: Request) -> Response:
        token = bearer(request)
        claims = await asyncio.to_thread(self.sessions.verify, None, token)
        actor = actor_from_claims(claims, client_ctx(request).remote_ip)
        if not (actor.is_platform_admin or actor.roles & {"agency_admin"}):
            raise de.PermissionDenied("an admin token is required")
        return JSONResponse(
            {
                "systemInfo": {
                    "version": "lgsp-identity",
                    "serverTime": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                },
                "cryptoInfo": {
                    "supportedKeystoreTypes": [],
                    "clientSignatureSymmetricAlgorithms": [],
                },
                "providers": {
                    "login-protocol": {"providers": {"openid-connect": {"order": 0}}},
                },
                "enums": {"operationType": ["CREATE", "UPDATE", "DELETE", "ACTION"]},
                "builtinProtocolMappers": {
                    "openid-connect": [m for s in client_scopes() for m in s["protocolMappers"]]
                },
            }
        )

    # --- events ---------------------------------------------------------------------------

    @staticmethod
    def _dates(request: Request) -> tuple[float | None, float | None]:
        out: list[float | None] = []
        for key in ("dateFrom", "dateTo"):
            value = request.query_params.get(key, "")
            if not value:
                out.append(None)
                continue
            try:
                day = time.strptime(value, "%Y-%m-%d")
            except ValueError:
                raise de.Invalid(key, "expected yyyy-MM-dd") from None
            start = float(time.mktime(day) - time.timezone)
            out.append(start if key == "dateFrom" else start + 86400)
        return out[0], out[1]

    async def events(self, request: Request) -> Response:
        realm, _ = await self.admin_actor(request)
        first, size = window(request)
        since, until = self._dates(request)
        q = request.query_params
        types = set(q.getlist("type"))
        rows = await asyncio.to_thread(
            self.audit.sign_ins, q.get("user", ""), since, until, first, size
        )
        out = [event_rep(realm, r) for r in rows]
        client = q.get("client", "")
        return JSONResponse(
            [
                e
                for e in out
                if (not types or e["type"] in types) and (not client or e["clientId"] == client)
            ]
        )

    async def admin_events(self, request: Request) -> Response:
        realm, _ = await self.admin_actor(request)
        first, size = window(request)
        since, until = self._dates(request)
        q = request.query_params
        rows = await asyncio.to_thread(
            self.audit.changes, q.get("authUser", ""), since, until, first, size
        )
        out = [admin_event_rep(realm, r) for r in rows]
        ops = set(q.getlist("operationTypes"))
        kinds = set(q.getlist("resourceTypes"))
        return JSONResponse(
            [
                e
                for e in out
                if (not ops or e["operationType"] in ops)
                and (not kinds or e["resourceType"] in kinds)
            ]
        )

    # --- sessions -------------------------------------------------------------------------

    def _session_reps(self, realm: str, rows: list[Any]) -> list[dict[str, Any]]:
        internal = {c["client_id"]: c["id"] for c in self.clients.rows(realm)}
        names = {}
        out = []
        for s in rows:
            if s["user_id"] not in names:
                names[s["user_id"]] = self.users.row(s["user_id"])["username"]
            out.append(
                {
                    "id": s["id"],
                    "username": names[s["user_id"]],
                    "userId": s["user_id"],
                    "ipAddress": "",
                    "start": int(s["created_at"] * 1000),
                    "lastAccess": int(s["created_at"] * 1000),
                    "clients": {internal.get(s["client_id"], s["client_id"]): s["client_id"]},
                    "transientUser": False,
                }
            )
        return out

    async def user_sessions(self, request: Request) -> Response:
        realm, _ = await self.admin_actor(request)
        uid = request.path_params["id"]

        def reps() -> list[dict[str, Any]]:
            self.users.row(uid, realm)  # NotFound for another realm's or no account
            return self._session_reps(realm, self.sessions.of_user(uid))

        return JSONResponse(await asyncio.to_thread(reps))

    async def client_sessions(self, request: Request) -> Response:
        realm, _ = await self.admin_actor(request)

        def reps() -> list[dict[str, Any]]:
            row = self.clients.by_internal_id(realm, request.path_params["id"])
            return self._session_reps(realm, self.sessions.of_client(realm, row["client_id"]))

        return JSONResponse(await asyncio.to_thread(reps))

    # --- credentials ----------------------------------------------------------------------

    async def credentials(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        uid = request.path_params["id"]
        if request.method == "DELETE":
            cred = request.path_params.get("credential_id", "")
            if cred == f"otp-{uid}":
                await asyncio.to_thread(self.users.set_totp, actor, uid, False)
                return Response(status_code=204)
            if cred == f"password-{uid}":
                raise de.Invalid("credential", "the password cannot be removed; reset it")
            raise de.NotFound(f"credential {cred[:64]} not found")
        row = await asyncio.to_thread(self.users.row, uid, realm)
        out = []
        if row["password_hash"]:
            out.append(
                {
                    "id": f"password-{uid}",
                    "type": "password",
                    "createdDate": int(row["updated_at"] * 1000),
                    "credentialData": '{"algorithm":"argon2"}',
                }
            )
        if row["totp_secret"]:
            out.append(
                {
                    "id": f"otp-{uid}",
                    "type": "otp",
                    "userLabel": "TOTP",
                    "credentialData": '{"subType":"totp","digits":6,"period":30}',
                }
            )
        return JSONResponse(out)

    # --- roles and clients ----------------------------------------------------------------

    async def role_members(self, request: Request) -> Response:
        realm, _ = await self.admin_actor(request)
        first, size = window(request)
        rows = await asyncio.to_thread(
            self.roles.members, realm, request.path_params["name"], first, size
        )
        return JSONResponse([user_rep(r) for r in rows])

    async def update_role(self, request: Request) -> Response:
        realm, actor = await self.admin_actor(request)
        body = await json_body(request)
        await asyncio.to_thread(
            self.roles.update_realm_role,
            actor,
            realm,
            request.path_params["name"],
            text(body, "name"),
            text(body, "description"),
        )
        return Response(status_code=204)

    async def composites(self, request: Request) -> Response:
        """Keycloak's roles/{name}/composites (realm roles only)."""
        realm, actor = await self.admin_actor(request)
        name = request.path_params["name"]
        if request.method == "GET":
            children = await asyncio.to_thread(self.roles.composites, realm, name)
            return JSONResponse(
                [role_rep(realm, n, model.ROLE_DESCRIPTIONS.get(n, "")) for n in children]
            )
        body = await json_body(request, list)
        given = [x.get("name") for x in body if isinstance(x, dict)]
        if not given or not all(isinstance(n, str) and n for n in given):
            raise de.Invalid("name", "each role needs a name")
        await asyncio.to_thread(
            self.roles.change_composites,
            actor,
            realm,
            name,
            [str(n) for n in given],
            request.method == "POST",
        )
        return Response(status_code=204)

    async def update_client(self, request: Request) -> Response:
        """Keycloak's PUT clients/{id}: name, redirect URIs, the password grant, the
        back-channel logout URI (attribute `backchannel.logout.url`), enabled=false."""
        realm, actor = await self.admin_actor(request)
        body = await json_body(request)
        internal = request.path_params["id"]
        redirect = body.get("redirectUris")
        if redirect is not None and (
            not isinstance(redirect, list) or not all(isinstance(u, str) for u in redirect)
        ):
            raise de.Invalid("redirectUris", "must be a list of URIs")
        grants = body.get("directAccessGrantsEnabled")
        if grants is not None and not isinstance(grants, bool):
            raise de.Invalid("directAccessGrantsEnabled", "must be true or false")
        attrs = body.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise de.Invalid("attributes", "must be an object")
        backchannel = attribute(attrs, "backchannel.logout.url") if attrs else None
        if attrs and "backchannel.logout.url" not in attrs:
            backchannel = None
        # Keycloak's client-jwt authenticator with the keys in the representation.
        jwks = attribute(attrs, "jwks.string") if "jwks.string" in attrs else None
        if body.get("clientAuthenticatorType") == "client-secret":
            jwks = ""

        def change() -> None:
            row = self.clients.configure(
                actor,
                realm,
                internal,
                display_name=body["name"] if isinstance(body.get("name"), str) else None,
                redirect_uris=redirect,
                direct_grants=grants,
                backchannel_logout_uri=backchannel,
                jwks=jwks,
            )
            if body.get("enabled") is False and client_rep(row)["enabled"]:
                self.clients.disable(actor, row["client_id"], "", "disabled over REST", realm)

        await asyncio.to_thread(change)
        return Response(status_code=204)

    # --- client scopes --------------------------------------------------------------------

    async def scopes(self, request: Request) -> Response:
        await self.admin_actor(request)
        return JSONResponse(client_scopes())

    async def scope(self, request: Request) -> Response:
        await self.admin_actor(request)
        for s in client_scopes():
            if s["id"] == request.path_params["scope_id"]:
                if request.url.path.endswith("/protocol-mappers/models"):
                    return JSONResponse(s["protocolMappers"])
                return JSONResponse(s)
        raise de.NotFound("client scope not found")


__all__ = ["SIGN_IN_ACTIONS", "AdminRealm"]
