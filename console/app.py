"""The console's ASGI app: OTLP/HTTP receiver, health and lag overview, trace pages."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from console import bus_pages, otlp, pages
from console.figures import FiguresSource
from console.figures import page as figures_page
from console.health import LagReader, Probe, probe_all
from console.store import SpanStore
from lgsp.config import Endpoint, Settings, mask_url

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def create_app(settings: Settings, *, store: SpanStore | None = None) -> Starlette:
    """The console app; `store` defaults to <data_dir>/console-traces.db."""
    if store is None:
        Path(settings.platform.data_dir).mkdir(parents=True, exist_ok=True)
        store = SpanStore(
            Path(settings.platform.data_dir) / "console-traces.db",
            max_spans=settings.console.retention_spans,
            max_age_s=settings.console.retention_hours * 3600,
        )
    lag_reader = LagReader(settings)
    limit = settings.console.max_otlp_bytes

    async def receive_traces(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return PlainTextResponse(f"body larger than {limit} bytes", status_code=413)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return PlainTextResponse(f"body larger than {limit} bytes", status_code=413)
        try:
            raw = otlp.decompress(bytes(body), request.headers.get("content-encoding", ""), limit)
            req, is_json = otlp.parse_request(raw, request.headers.get("content-type", ""))
            spans = otlp.spans_of(req)
        except otlp.TooLarge as exc:
            return PlainTextResponse(str(exc), status_code=413)
        except otlp.OtlpError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        await run_in_threadpool(store.add, spans)
        content, media = otlp.response_body(is_json)
        return Response(content, media_type=media)

    async def overview(request: Request) -> HTMLResponse:
        from lgsp.runner import describe, discover, read_state

        components = await run_in_threadpool(discover)
        supervised = (await run_in_threadpool(read_state, settings) or {}).get("components", {})
        installed = {c.name for c in components}
        kinds = {c.name: c.kind for c in components}
        endpoints = [ep for ep in settings.endpoints() if ep.component != "console"]
        probes = await probe_all([ep for ep in endpoints if ep.component in installed])
        names = ["console", *settings.services, *dict.fromkeys(ep.component for ep in endpoints)]
        rows = []
        for name in dict.fromkeys(names):
            what = describe(name, kinds.get(name, "service"))
            if name == "console":
                ep = settings.endpoints("console")[0]
                rows.append((name, what, "", [_self_probe(ep)]))
            elif name not in installed:
                rows.append((name, what, "not installed (no package to run)", []))
            else:
                note = _supervisor_note(supervised.get(name))
                ours = [p for p in probes if p.endpoint.component == name]
                rows.append((name, what, note, ours))
        lag = await lag_reader.read()
        summary = {
            "bus": mask_url(settings.bus.url),
            "data directory": settings.platform.data_dir,
            "configuration file": settings.config_file or "(none)",
            "OTLP endpoint (processes export to)": settings.telemetry.otlp_endpoint,
        }
        count = await run_in_threadpool(store.count_spans)
        return HTMLResponse(pages.overview(rows, lag, count, summary))

    async def traces(request: Request) -> HTMLResponse:
        service = request.query_params.get("service") or None
        errors_only = request.query_params.get("errors") == "1"
        found = await run_in_threadpool(store.recent_traces, 200, service, errors_only)
        return HTMLResponse(pages.traces_list(found, service, errors_only))

    async def trace(request: Request) -> HTMLResponse:
        trace_id = request.path_params["trace_id"].lower()
        spans = await run_in_threadpool(store.trace, trace_id) if TRACE_ID.match(trace_id) else []
        if not spans:
            body = "<h1>Trace not found</h1><p>It may have been pruned, or not arrived yet.</p>"
            return HTMLResponse(pages.layout("Not found", body), status_code=404)
        return HTMLResponse(pages.waterfall(trace_id, spans))

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def metrics(request: Request) -> Response:
        # The console's own process metrics, on its HTTP port (it has one already).
        body = await run_in_threadpool(generate_latest)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await lag_reader.close()
            await figures.close()
            store.close()

    bus_views = bus_pages.routes(settings, lag_reader)
    figures = FiguresSource(settings)
    app = Starlette(
        routes=[
            Route("/bus", bus_views["bus_page"]),
            Route("/figures", figures_page(figures)),
            Route("/deadletters", bus_views["dead_letters_page"]),
            Route("/deadletters/replay", bus_views["replay_dead_letters"], methods=["POST"]),
            Route("/", overview),
            Route("/traces", traces),
            Route("/traces/{trace_id}", trace),
            Route("/v1/traces", receive_traces, methods=["POST"]),
            Route("/healthz", healthz),
            Route("/metrics", metrics),
        ],
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.lag_reader = lag_reader
    return app


def _self_probe(ep: Endpoint) -> Probe:
    return Probe(ep, "up", "this console")


def _supervisor_note(state: dict[str, object] | None) -> str:
    """What `lgsp up` says of a component that is not simply running (restarts, crash loop)."""
    if not state or (state.get("state") == "running" and state.get("starts", 1) == 1):
        return ""
    text = f" — {state['state']}, started {state['starts']} time(s)"
    if state.get("last_exit"):
        text += f", last exit {state['last_exit']}"
    return text
