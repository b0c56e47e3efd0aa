"""A realm's settings that apply (domain/realm_settings.py): read by the token path, the
sign-in checks and the password checks on every use (a 5 s copy, dropped at once by any
change in this process), changed by platform administrators over the admin REST API —
validated, stored, audited (an admin event), and in force from the next request."""

from __future__ import annotations

import threading
import time
from typing import Any

from services.identity.adapters.unit_of_work import Repositories, Storage
from services.identity.domain import realm_settings as domain
from services.identity.domain.access import Actor, require_platform_admin
from services.identity.domain.errors import Stale
from services.identity.domain.realm_settings import RealmSettings
from services.identity.service_layer.common import DirectoryUseCases, now

CACHE_TTL = 5.0  # another replica's change lands within this time


class RealmPolicies(DirectoryUseCases):
    def __init__(self, storage: Storage, defaults: RealmSettings | None = None) -> None:
        super().__init__(storage)
        self.defaults = defaults or RealmSettings()
        self._cache: dict[str, tuple[int, float, RealmSettings]] = {}
        self._lock = threading.Lock()

    def current(self, realm: str, r: Repositories | None = None) -> RealmSettings:
        """The settings in force; `r`: the caller's repositories (inside a transaction)."""
        generation, clock = self.storage.generation, time.monotonic()
        hit = self._cache.get(realm)
        if hit is not None and hit[0] == generation and hit[1] > clock:
            return hit[2]
        if r is None:
            with self.storage.read() as own:
                row = own.realm_settings.get(realm)
        else:
            row = r.realm_settings.get(realm)
        value = (
            self.defaults
            if row is None
            else RealmSettings.from_stored(dict(row["settings"]), self.defaults)
        )
        with self._lock:
            if len(self._cache) > 1000:
                self._cache.clear()
            self._cache[realm] = (generation, clock + CACHE_TTL, value)
        return value

    def update(
        self, actor: Actor, realm: str, rep: Any, read_only: dict[str, Any]
    ) -> RealmSettings:
        """Keycloak's PUT of the realm representation: only platform administrators (a
        realm's settings bind every agency in it)."""
        require_platform_admin(actor)
        with self.change() as uow:
            r = uow.repos
            row = r.realm_settings.get(realm)
            current = (
                self.defaults
                if row is None
                else RealmSettings.from_stored(dict(row["settings"]), self.defaults)
            )
            new, changed = domain.apply(current, rep, read_only)
            if not changed:
                return current
            r.realm_settings.put(realm, new.stored(), now())
            after = r.realm_settings.get(realm)
            if after is None or (row is not None and after["version"] != row["version"] + 1):
                raise Stale("the realm's settings changed meanwhile; read them again")
            before_rep, after_rep = current.representation(), new.representation()
            self.record(
                uow,
                actor,
                "realm.update",
                realm,
                None,
                fields=changed,
                **{k: f"{before_rep[k]} -> {after_rep[k]}" for k in changed},
            )
            self.commit(uow)
        return new
