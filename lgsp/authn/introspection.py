"""Token introspection (RFC 7662): asks the provider whether a token is still active.

A signed JWT stays valid until it expires; introspection also sees a sign-out, a revoked
token and a disabled account. Services use it only for sensitive calls, and remember each
answer for `cache_ttl_s` seconds, so revocation is seen within that delay.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol

import httpx

from lgsp.grpc.errors import Unavailable

__all__ = ["HttpIntrospector", "Introspector"]

log = logging.getLogger("lgsp.auth")


class _NoAuth(httpx.Auth):
    """client_secret_post: the credentials travel in the form, no Authorization header."""


_NO_AUTH = _NoAuth()


class Introspector(Protocol):
    async def is_active(self, token: str) -> bool: ...

    async def aclose(self) -> None: ...


class HttpIntrospector:
    """RFC 7662 client authenticated with client credentials (basic or post).

    Fails closed: if the provider cannot be reached the call is refused with UNAVAILABLE.
    """

    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        client_secret: str,
        auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic",
        cache_ttl_s: float = 5.0,
        max_entries: int = 10_000,
        http_client: httpx.AsyncClient | None = None,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._client_id = client_id
        self._client_secret = client_secret
        self._auth_method = auth_method
        self._ttl = cache_ttl_s
        self._max_entries = max_entries
        self._client = http_client
        self._owns_client = http_client is None
        self._timeout = timeout_s
        self._clock = clock
        self._answers: dict[bytes, tuple[float, bool]] = {}  # sha256(token) -> (until, active)
        self._pending: dict[bytes, asyncio.Future[bool]] = {}
        self.requests = 0

    async def is_active(self, token: str) -> bool:
        digest = hashlib.sha256(token.encode()).digest()  # keep no token text in memory
        now = self._clock()
        cached = self._answers.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        pending = self._pending.get(digest)
        if pending is not None:  # the same token is being asked about already
            return await asyncio.shield(pending)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[digest] = future
        try:
            active = bool((await self.introspect(token)).get("active") is True)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            self._pending.pop(digest, None)
        future.set_result(active)
        if len(self._answers) >= self._max_entries:
            self._answers = {d: a for d, a in self._answers.items() if a[0] > now}
            if len(self._answers) >= self._max_entries:
                self._answers.clear()
        self._answers[digest] = (now + self._ttl, active)
        return active

    async def introspect(self, token: str) -> Mapping[str, Any]:
        """The provider's raw answer ({"active": false} for a dead token)."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        data = {"token": token, "token_type_hint": "access_token"}
        if self._auth_method == "client_secret_post":
            data |= {"client_id": self._client_id, "client_secret": self._client_secret}
            auth: httpx.Auth = _NO_AUTH
        else:
            auth = httpx.BasicAuth(self._client_id, self._client_secret)
        self.requests += 1
        try:
            response = await self._client.post(self.url, data=data, auth=auth)
            response.raise_for_status()
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("token introspection at %s failed: %s", self.url, exc)
            raise Unavailable("token introspection unavailable") from None
        if not isinstance(answer, dict):
            raise Unavailable("token introspection gave an invalid answer")
        return answer

    async def aclose(self) -> None:
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None
