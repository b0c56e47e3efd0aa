"""What every national client shares: construction from Settings, closing, the call."""

from __future__ import annotations

from typing import Any, Self

import httpx

from lgsp.config import NationalSettings, Settings, peer
from lgsp.connectors.http import ClientOptions, ResilientClient

DEFAULT_API_KEY = NationalSettings().api_key  # the mocks' default; set [national] api_key


class NationalClient:
    system: str = ""  # package name of the mock / key in NATIONAL_MOCKS

    def __init__(
        self,
        base: str,
        api_key: str | None = None,
        options: ClientOptions | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http = ResilientClient(
            self.system, base, api_key or DEFAULT_API_KEY, options, transport=transport
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, api_key: str | None = None, options: ClientOptions | None = None
    ) -> Self:
        key = api_key if api_key is not None else settings.national.api_key
        base = peer(settings, cls.system).url()
        if not settings.tls.enabled:
            return cls(base, key, options)
        from lgsp.tls import client_ssl_context

        verify = client_ssl_context(settings)
        return cls(base, key, options, transport=httpx.AsyncHTTPTransport(verify=verify))

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
