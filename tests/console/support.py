"""A console on a free port, signed-in clients, and spans exported with the installation token.

`FakeOidc` stands in for identity where a test is not about signing in: its "authorization
server" sends the browser straight back to the console's callback with a code it accepts.
The real flow through identity is tested in test_signin.py and test_browser.py."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import uvicorn
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from console.app import create_app
from console.auth import Operator
from lgsp.config import Settings
from lgsp.grpc.errors import Unauthenticated
from lgsp.otlp_token import HEADER, installation_token


class FakeOidc:
    """OidcClient's interface; `roles` are what the next sign-in gets."""

    def __init__(self, settings: Settings, roles: frozenset[str] = frozenset({"operator"})):
        self.redirect_uri = settings.console_url + "auth/callback"
        self.roles = roles
        self.logged_out: list[str] = []

    def authorization_url(self, state: str, challenge: str) -> str:
        assert len(challenge) == 43  # S256 of the verifier, base64url without padding
        return f"{self.redirect_uri}?{urlencode({'code': 'good', 'state': state})}"

    async def exchange(self, code: str, verifier: str) -> tuple[Operator, str]:
        if code != "good":
            raise Unauthenticated("code refused")
        return Operator("u-1", "vanhanh.ubnd", "Cán bộ vận hành", self.roles), "refresh-1"

    async def logout(self, refresh_token: str) -> None:
        self.logged_out.append(refresh_token)

    async def aclose(self) -> None:
        pass


@contextmanager
def running_console(settings: Settings, **kwargs: Any) -> Iterator[str]:
    """The console app served by uvicorn on a thread at settings.console.port; its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, **kwargs),
            host="127.0.0.1",
            port=settings.console.port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "console did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{settings.console.port}"
    finally:
        server.should_exit = True
        thread.join(10)
        assert not thread.is_alive()


def sign_in(client: httpx.Client, base: str) -> str:
    """Sign `client` in (through FakeOidc); returns the session's CSRF token."""
    resp = client.get(f"{base}/auth/start", follow_redirects=True)
    assert resp.status_code == 200 and str(resp.url).startswith(base), resp.text
    return csrf_of(client, base)


def csrf_of(client: httpx.Client, base: str) -> str:
    page = client.get(f"{base}/traces").text
    marker = 'name="csrf_token" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def otlp_headers(settings: Settings) -> dict[str, str]:
    token = installation_token(settings.platform.data_dir, settings.console.otlp_token)
    return {HEADER: token}


def exporter(base: str, settings: Settings) -> OTLPSpanExporter:
    """The SDK's OTLP/HTTP exporter, sending the token as every platform process does."""
    return OTLPSpanExporter(
        endpoint=f"{base}/v1/traces", timeout=10, headers=otlp_headers(settings)
    )


def provider_for(base: str, settings: Settings, service: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter(base, settings)))
    return provider


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@asynccontextmanager
async def signed_in_asgi(
    app: Any, settings: Settings, http_timeout_s: float = 20
) -> AsyncIterator[httpx.AsyncClient]:
    """An operator's client signed in (through FakeOidc, which `app` must have) over the ASGI
    transport; its `post` sends the session's CSRF token with every form, as the pages do."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=settings.console_url.rstrip("/"),
        timeout=http_timeout_s,
    ) as client:
        assert (await client.get("/auth/start", follow_redirects=True)).status_code == 200
        page = (await client.get("/traces")).text
        marker = 'name="csrf_token" value="'
        start = page.index(marker) + len(marker)
        csrf = page[start : page.index('"', start)]
        post = client.post

        async def post_with_csrf(url: str, *, data: dict[str, str], **kw: Any) -> httpx.Response:
            return await post(url, data={**data, "csrf_token": csrf}, **kw)

        client.post = post_with_csrf  # type: ignore[method-assign]
        yield client
