"""The dossiers service's HTTP side (`[dossiers] http_port`): pages for citizens and the
national payment platform's callbacks. Each concern is a module of its own that hands its
routes to `build_http_app`; the service serves them with lgsp.http_server."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route


async def _healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def build_http_app(routes: Sequence[BaseRoute] = ()) -> Starlette:
    return Starlette(routes=[Route("/healthz", _healthz, methods=["GET"]), *routes])
