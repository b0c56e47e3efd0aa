"""Client systems: register (with their service account), update, disable, rotate the
secret, delete, reading and listing them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from lgsp.api.identity.v1 import events_pb2 as ev
from lgsp.api.identity.v1 import identity_pb2 as pb
from services.identity.adapters import proto
from services.identity.domain import directory as rules
from services.identity.domain import model, security
from services.identity.domain.access import ADMIN_CLI, REALM, Actor, require_platform_admin
from services.identity.domain.errors import AlreadyExists, FailedPrecondition, Invalid
from services.identity.domain.model import Status
from services.identity.service_layer import ended
from services.identity.service_layer.client_auth import check_jwks
from services.identity.service_layer.common import DirectoryUseCases, Row, next_page, now, page


class Clients(DirectoryUseCases):
    def create(
        self,
        actor: Actor,
        c: pb.ClientSystem,
        *,
        realm: str = REALM,
        secret: str | None = "",
        redirect_uris: Sequence[str] = (),
        service_accounts: bool = True,
        direct_grants: bool = True,
        roles: Sequence[str] = (),
    ) -> tuple[pb.ClientSystem, str, str]:
        """Register a client; returns (client, secret shown once, internal id).

        secret "" generates one; None makes a public client (no secret; PKCE required)."""
        require_platform_admin(actor)
        client_id = model.check_client_id(c.client_id, "client.client_id")
        name = model.check_name(c.display_name or client_id, "client.display_name")
        if c.owner_agency_code:
            model.check_agency_code(c.owner_agency_code, "client.owner_agency_code")
        elif realm == REALM and service_accounts:
            raise Invalid("client.owner_agency_code", "is required")
        redirects = rules.check_redirect_uris(redirect_uris)
        rules.check_token_ttl(c.token_ttl_seconds)
        if secret:
            rules.check_client_secret(secret)
        if secret == "":
            secret = security.new_secret()
        if secret is None and client_id != ADMIN_CLI:
            direct_grants = False  # a public client never takes passwords itself
        with self.change() as uow:
            r = uow.repos
            if c.owner_agency_code:
                r.agencies.require(c.owner_agency_code)
            if r.clients.get(realm, client_id) is not None:
                raise AlreadyExists(
                    f"client {client_id} already exists", kind="client", name=client_id
                )
            ts, internal = now(), str(uuid.uuid4())
            service_user = None
            if service_accounts and secret:
                service_user = str(uuid.uuid4())
                username = rules.service_account_name(client_id)
                r.accounts.add(
                    id=service_user,
                    realm=realm,
                    username=username,
                    display_name=name,
                    email="",
                    phone="",
                    agency_code=c.owner_agency_code or None,
                    position="",
                    status=Status.ACTIVE,
                    password_hash=None,
                    password_temporary=False,
                    failed_logins=0,
                    service_client_id=client_id,
                    search_text=rules.fold(f"{username} {name}"),
                    created_at=ts,
                    updated_at=ts,
                    version=1,
                )
                for role in roles:
                    r.grants.add(
                        user_id=service_user,
                        role=role,
                        agency_code=c.owner_agency_code,
                        include_sub=False,
                        granted_at=ts,
                        granted_by=actor.id,
                    )
            r.clients.add(
                id=internal,
                realm=realm,
                client_id=client_id,
                display_name=name,
                secret_hash=security.hash_secret(secret) if secret else None,
                owner_agency_code=c.owner_agency_code,
                redirect_uris=redirects,
                scopes=list(c.scopes),
                service_accounts=bool(service_user),
                direct_grants=direct_grants,
                service_user_id=service_user,
                allow_app_passwords=c.allow_app_passwords,
                status=Status.ACTIVE,
                token_ttl=c.token_ttl_seconds,
                created_at=ts,
                secret_rotated_at=ts if secret else None,
                version=1,
            )
            msg = proto.client(r.clients.require(realm, client_id))
            event = ev.ClientSystemCreated(client=msg, actor_id=actor.id)
            self.record(uow, actor, "client.create", client_id, event if realm == REALM else None)
            self.commit(uow)
        return msg, secret or "", internal

    def update(
        self, actor: Actor, c: pb.ClientSystem, mask: Sequence[str], realm: str = REALM
    ) -> pb.ClientSystem:
        require_platform_admin(actor)
        values = rules.client_values(c, mask)
        with self.change() as uow:
            r = uow.repos
            row = r.clients.require(realm, c.client_id)
            rules.check_etag(row, c.etag, f"client {c.client_id}")
            if "owner_agency_code" in values:
                r.agencies.require(values["owner_agency_code"])
            r.clients.update(row["id"], version=row["version"] + 1, **values)
            self.record(uow, actor, "client.update", c.client_id, None, fields=list(values))
            msg = proto.client(r.clients.require(realm, c.client_id))
            self.commit(uow)
        return msg

    def configure(
        self,
        actor: Actor,
        realm: str,
        internal_id: str,
        *,
        display_name: str | None = None,
        redirect_uris: Sequence[str] | None = None,
        direct_grants: bool | None = None,
        backchannel_logout_uri: str | None = None,
        jwks: str | None = None,
    ) -> Row:
        """What Keycloak's client representation sets (admin REST `update_client`): only the
        given settings change. A public client cannot have the password grant."""
        require_platform_admin(actor)
        values: dict[str, Any] = {}
        if display_name is not None:
            values["display_name"] = model.check_name(display_name, "name")
        if redirect_uris is not None:
            values["redirect_uris"] = rules.check_redirect_uris(redirect_uris)
        if backchannel_logout_uri:
            rules.check_redirect_uris([backchannel_logout_uri])
        if backchannel_logout_uri is not None:
            values["backchannel_logout_uri"] = backchannel_logout_uri
        if jwks is not None:  # private_key_jwt from now on ("" = back to the secret)
            values["jwks"] = check_jwks(jwks) if jwks else ""
        with self.change() as uow:
            r = uow.repos
            row = r.clients.by_internal_id(realm, internal_id)
            if direct_grants is not None:
                if direct_grants and row["secret_hash"] is None and row["client_id"] != ADMIN_CLI:
                    raise Invalid(
                        "directAccessGrantsEnabled", "a public client cannot use the password grant"
                    )
                values["direct_grants"] = direct_grants
            if values:
                r.clients.update(row["id"], version=row["version"] + 1, **values)
                self.record(
                    uow, actor, "client.update", row["client_id"], None, fields=list(values)
                )
            out = r.clients.by_internal_id(realm, internal_id)
            self.commit(uow)
        return out

    def disable(
        self, actor: Actor, client_id: str, etag: str, reason: str, realm: str = REALM
    ) -> pb.ClientSystem:
        require_platform_admin(actor)
        reason = rules.reason(reason)
        with self.change() as uow:
            r = uow.repos
            row = r.clients.require(realm, client_id)
            rules.check_etag(row, etag, f"client {client_id}")
            r.clients.update(row["id"], status=Status.DISABLED, version=row["version"] + 1)
            ended.client_ended(uow, r, row, now())
            event = ev.ClientSystemDisabled(client_id=client_id, reason=reason, actor_id=actor.id)
            self.record(uow, actor, "client.disable", client_id, event if realm == REALM else None)
            msg = proto.client(r.clients.require(realm, client_id))
            self.commit(uow)
        return msg

    def rotate_secret(
        self, actor: Actor, client_id: str, realm: str = REALM
    ) -> tuple[str, pb.ClientSystem]:
        require_platform_admin(actor)
        secret = security.new_secret()
        with self.change() as uow:
            r = uow.repos
            row = r.clients.require(realm, client_id)
            if row["secret_hash"] is None:
                raise FailedPrecondition(f"client {client_id} is public: it has no secret")
            r.clients.update(
                row["id"],
                secret_hash=security.hash_secret(secret),
                secret_rotated_at=now(),
                version=row["version"] + 1,
            )
            self.record(uow, actor, "client.rotate_secret", client_id, None)
            msg = proto.client(r.clients.require(realm, client_id))
            self.commit(uow)
        return secret, msg

    def delete(self, actor: Actor, internal_id: str, realm: str) -> None:
        require_platform_admin(actor)
        with self.change() as uow:
            r = uow.repos
            row = r.clients.by_internal_id(realm, internal_id)
            r.clients.remove(internal_id)
            r.client_roles.remove_client(realm, row["client_id"])
            ended.client_ended(uow, r, row, now())
            if row["service_user_id"]:
                r.accounts.update(
                    row["service_user_id"], status=Status.DISABLED, realm=f"deleted:{realm}"
                )
            event = ev.ClientSystemDisabled(
                client_id=row["client_id"], reason="deleted", actor_id=actor.id
            )
            self.record(
                uow, actor, "client.delete", row["client_id"], event if realm == REALM else None
            )
            self.commit(uow)

    # --- reading --------------------------------------------------------------------------

    def get(self, client_id: str, realm: str = REALM) -> pb.ClientSystem:
        with self.storage.read() as r:
            return proto.client(r.clients.require(realm, client_id))

    def row(self, realm: str, client_id: str) -> Row | None:
        with self.storage.read() as r:
            return r.clients.get(realm, client_id)

    def by_internal_id(self, realm: str, internal_id: str) -> Row:
        with self.storage.read() as r:
            return r.clients.by_internal_id(realm, internal_id)

    def service_account(self, realm: str, internal_id: str) -> Row:
        """The service-account user of a client (Invalid when it has none)."""
        with self.storage.read() as r:
            row = r.clients.by_internal_id(realm, internal_id)
            if not row["service_user_id"]:
                raise Invalid("client", "service accounts are not enabled for this client")
            return r.accounts.require(row["service_user_id"])

    def rows(self, realm: str, client_id: str = "") -> list[Row]:
        with self.storage.read() as r:
            return r.clients.select(realm, client_id=client_id)

    def list(self, actor: Actor, req: Any, realm: str = REALM) -> tuple[list[pb.ClientSystem], str]:
        require_platform_admin(actor)
        offset, size = page(req.page_size, req.page_token, 50, 500)
        with self.storage.read() as r:
            rows = r.clients.select(
                realm,
                owner_agency_code=req.owner_agency_code,
                status=int(req.status),
                offset=offset,
                limit=size + 1,
            )
        return [proto.client(row) for row in rows[:size]], next_page(offset, size, len(rows) > size)
