"""Tokens for calling other services: the client-credentials grant, cached until near expiry."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Sequence

import httpx

from lgsp.grpc.errors import Unavailable

__all__ = ["ClientCredentials"]


class ClientCredentials:
    """Obtains and caches an access token at `token_url` with client_id/secret.

    `await creds.metadata()` gives [("authorization", "Bearer …")] for a gRPC call; a token is
    renewed `renew_before_s` seconds before it expires.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        renew_before_s: float = 30.0,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.token_url = token_url
        self._verify = verify  # the platform's CA when [tls] is on (lgsp.tls)
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._renew_before = renew_before_s
        self._client = http_client
        self._owns_client = http_client is None
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        if self._token is not None and self._clock() < self._expires_at - self._renew_before:
            return self._token
        async with self._lock:
            if self._token is not None and self._clock() < self._expires_at - self._renew_before:
                return self._token
            if self._client is None:
                self._client = httpx.AsyncClient(timeout=5.0, verify=self._verify)
            data = {"grant_type": "client_credentials"}
            if self._scope:
                data["scope"] = self._scope
            try:
                response = await self._client.post(
                    self.token_url, data=data, auth=(self._client_id, self._client_secret)
                )
                response.raise_for_status()
                answer = response.json()
                token = answer["access_token"]
                expires_in = float(answer.get("expires_in", 60))
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                raise Unavailable(f"cannot obtain a token from {self.token_url}: {exc}") from None
            self._token, self._expires_at = str(token), self._clock() + expires_in
            return self._token

    async def metadata(self) -> Sequence[tuple[str, str]]:
        return (("authorization", f"Bearer {await self.token()}"),)

    async def aclose(self) -> None:
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None
