"""The token path's short-lived copies of directory reads (clients, accounts, role grants),
and client authentication, which reads through them.

A copy is dropped when the directory changes in this process (Storage.generation) and after
CACHE_TTL seconds otherwise, so a change made through another replica lands within that time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from services.identity.adapters.unit_of_work import Repositories, Storage
from services.identity.domain import security
from services.identity.domain.errors import ClientNotAuthenticated, UnknownClient
from services.identity.domain.model import Status

CACHE_TTL = 5.0


class Asserted(str):
    """In place of a secret: the client proved itself with a private_key_jwt assertion that
    service_layer/client_auth.py verified (signature, audience, expiry, single use)."""

    def __new__(cls, client_id: str) -> Asserted:
        obj = super().__new__(cls, "")
        obj.client_id = client_id
        return obj

    client_id: str


Row = Any  # a stored record (SQLAlchemy RowMapping)


class DirectoryCache:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._cache: dict[tuple[str, ...], tuple[int, float, Any]] = {}

    def cached(self, key: tuple[str, ...], load: Callable[[], Any]) -> Any:
        now = time.monotonic()
        generation = self.storage.generation
        hit = self._cache.get(key)
        if hit is not None and hit[0] == generation and hit[1] > now:
            return hit[2]
        value = load()
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (generation, now + CACHE_TTL, value)
        return value

    def account(self, r: Repositories, user_id: str) -> Row:
        return self.cached(("user", user_id), lambda: r.accounts.one(user_id))

    def roles_of(self, r: Repositories, user_id: str) -> list[Any]:
        return self.cached(("grants", user_id), lambda: r.grants.roles_of(user_id))

    def composites(self, r: Repositories, realm: str) -> dict[str, list[str]]:
        return self.cached(("composites", realm), lambda: r.realm_roles.composites(realm))

    def client_roles_of(self, r: Repositories, user_id: str) -> dict[str, list[str]]:
        return self.cached(
            ("client_roles", user_id), lambda: r.client_roles.resource_access(user_id)
        )

    def client(self, r: Repositories, realm: str, client_id: str, secret: str | None) -> Row:
        """The authenticated client (confidential: secret checked, or its private_key_jwt
        assertion already verified — `Asserted`; public: no secret)."""
        row = self.cached(("client", realm, client_id), lambda: r.clients.get(realm, client_id))
        if row is None or row["status"] != Status.ACTIVE:
            raise UnknownClient("Invalid client or Invalid client credentials")
        if row["jwks"]:
            # A client that registered keys proves itself with them, never with a secret.
            if not isinstance(secret, Asserted) or secret.client_id != client_id:
                raise ClientNotAuthenticated("Invalid client or Invalid client credentials")
            return row
        if row["secret_hash"] is not None:
            if not secret or not security.verify_secret(row["secret_hash"], secret):
                raise ClientNotAuthenticated("Invalid client or Invalid client credentials")
        return row
