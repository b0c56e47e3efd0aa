"""The province's figures page: documents (electronic and signed shares) and dossiers
(on-time share, average processing time), from the services' own figures RPCs.

The console is not a service and imports none: it calls GetDocumentFigures and
GetDossierFigures over gRPC, with a token of its own identity client (client credentials,
`[console] client_id`, an auditor of the province in the demo seed), for
`[console] figures_agency_code` and every agency below it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from console.templating import render
from lgsp.agencies import LazyCredentials
from lgsp.api.documents.v1 import documents_pb2, documents_pb2_grpc
from lgsp.api.dossiers.v1 import dossiers_pb2, dossiers_pb2_grpc
from lgsp.config import Settings, peer
from lgsp.grpc.client import channel, channel_credentials
from lgsp.workdays import local_date

TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Answer:
    """One service's figures, or why there are none."""

    figures: Any = None
    error: str = ""


def _address(settings: Settings, service: str) -> str | None:
    if service not in settings.services:
        return None
    return peer(settings, service).address


class FiguresSource:
    """Calls the two figures RPCs with the console's token; channels made at first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.agency = settings.console.figures_agency_code
        self._token = LazyCredentials(
            settings, settings.console.client_id, settings.console.client_secret
        )
        self._channels: dict[str, grpc.aio.Channel] = {}

    def _channel(self, service: str) -> grpc.aio.Channel | None:
        if service not in self._channels:
            address = _address(self.settings, service)
            if address is None:
                return None
            self._channels[service] = channel(
                address,
                service_name="console",
                tracing=False,
                credentials=channel_credentials(self.settings),
            )
        return self._channels[service]

    async def _call(self, service: str, call: Any) -> Answer:
        ch = self._channel(service)
        if ch is None:
            return Answer(error=f"{service} is not installed")
        try:
            return Answer(figures=(await call(ch, await self._token.metadata())).total)
        except grpc.aio.AioRpcError as exc:
            return Answer(error=f"{service}: {exc.code().name}: {exc.details()}")
        except Exception as exc:  # no token yet (identity down): said on the page
            return Answer(error=f"{service}: {exc}")

    async def documents(self, start: date, end: date) -> Answer:
        request = documents_pb2.GetDocumentFiguresRequest(
            agency_code=self.agency,
            include_sub_agencies=True,
            from_date=start.isoformat(),
            to_date=end.isoformat(),
        )

        async def call(ch: grpc.aio.Channel, metadata: Any) -> Any:
            stub = documents_pb2_grpc.DocumentServiceStub(ch)
            return await stub.GetDocumentFigures(request, metadata=metadata, timeout=TIMEOUT_S)

        return await self._call("documents", call)

    async def dossiers(self, start: date, end: date) -> Answer:
        request = dossiers_pb2.GetDossierFiguresRequest(
            agency_code=self.agency,
            include_sub_agencies=True,
            from_date=start.isoformat(),
            to_date=end.isoformat(),
        )

        async def call(ch: grpc.aio.Channel, metadata: Any) -> Any:
            stub = dossiers_pb2_grpc.DossierServiceStub(ch)
            return await stub.GetDossierFigures(request, metadata=metadata, timeout=TIMEOUT_S)

        return await self._call("dossiers", call)

    async def close(self) -> None:
        for ch in self._channels.values():
            with contextlib.suppress(Exception):
                await ch.close()
        self._channels.clear()
        await self._token.aclose()


def _period(request: Request, today: date) -> tuple[date, date, str]:
    """The period asked (from, to as YYYY-MM-DD), by default this year so far; an error."""
    try:
        start = date.fromisoformat(request.query_params.get("from") or f"{today.year}-01-01")
        end = date.fromisoformat(request.query_params.get("to") or today.isoformat())
    except ValueError:
        return date(today.year, 1, 1), today, "from and to are dates: YYYY-MM-DD"
    if end < start:
        return date(today.year, 1, 1), today, "the period ends before it starts"
    return start, end, ""


def page(source: FiguresSource) -> Any:
    """The GET /figures handler."""

    async def figures_page(request: Request) -> Response:
        # The province's date (UTC+7), not the server's: a server on UTC is a day behind from
        # 17:00 to 24:00 and would leave out what was issued and received today.
        start, end, error = _period(request, local_date(datetime.now(UTC)))
        docs = await source.documents(start, end)
        dossiers = await source.dossiers(start, end)
        html = render(
            request,
            "figures.html",
            title="Province figures",
            agency=source.agency,
            start=start,
            end=end,
            error=error,
            documents=docs,
            dossiers=dossiers,
        )
        return HTMLResponse(html, status_code=400 if error else 200)

    return figures_page
