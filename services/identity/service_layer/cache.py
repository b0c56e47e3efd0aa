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

    def client_roles_of(self, r: Repositories, user_id: str) -> dict[str, list[str]]:
        return self.cached(
            ("client_roles", user_id), lambda: r.client_roles.resource_access(user_id)
        )

    def client(self, r: Repositories, realm: str, client_id: str, secret: str | None) -> Row:
        """The authenticated client (confidential: secret checked; public: no secret)."""
        row = self.cached(("client", realm, client_id), lambda: r.clients.get(realm, client_id))
        if row is None or row["status"] != Status.ACTIVE:
            raise UnknownClient("Invalid client or Invalid client credentials")
        if row["secret_hash"] is not None:
            if not secret or not security.verify_secret(row["secret_hash"], secret):
                raise ClientNotAuthenticated("Invalid client or Invalid client credentials")
        return row
