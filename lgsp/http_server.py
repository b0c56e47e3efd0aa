"""An ASGI app served by uvicorn inside a service's process, as one of its background tasks:
identity's OpenID Connect pages, the dossiers' public lookup page and payment callbacks.

The platform's serve_until_signal owns SIGTERM/SIGINT; uvicorn's own signal handling is off
and the server stops when the runtime's stop event is set."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any

import uvicorn

from lgsp.tls import UvicornSsl


class QuietServer(uvicorn.Server):
    """uvicorn's server ticking once a second instead of ten times: its tick only refreshes
    the Date header (once a second anyway) and notices `should_exit`, and ten wake-ups a
    second in every HTTP process were a good part of an idle platform's CPU. A stop is
    noticed within a second."""

    async def main_loop(self) -> None:
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 10) % 864000  # on_tick refreshes the headers at multiples of 10
            await asyncio.sleep(1.0)
            should_exit = await self.on_tick(counter)


def run_quietly(config: uvicorn.Config) -> None:
    """uvicorn.run for a process's only server (the national mocks, the console)."""
    QuietServer(config).run()


class _Uvicorn(QuietServer):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def asgi_task(
    app: Any,
    host: str,
    port: int,
    *,
    trusted_proxies: Sequence[str] = (),
    ssl: UvicornSsl | None = None,
) -> Callable[[asyncio.Event], Awaitable[None]]:
    """A Wiring background task serving `app` on host:port until stop is set. Forwarded
    headers are believed only from `trusted_proxies` (uvicorn would otherwise believe any from
    loopback): the client address is what throttles count and audit logs record. `ssl` is
    lgsp.tls.uvicorn_ssl(settings): HTTPS when [tls] is enabled."""

    async def serve(stop: asyncio.Event) -> None:
        await serve_asgi(app, host, port, stop, trusted_proxies=trusted_proxies, ssl=ssl)

    return serve


async def serve_asgi(
    app: Any,
    host: str,
    port: int,
    stop: asyncio.Event,
    *,
    trusted_proxies: Sequence[str] = (),
    ssl: UvicornSsl | None = None,
) -> None:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        http="auto",  # httptools when installed: ~0.3 ms less per request than h11
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=list(trusted_proxies),
        **(ssl or {}),
    )
    server = _Uvicorn(config)
    task = asyncio.create_task(server.serve())
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        await task
    finally:
        stopper.cancel()
