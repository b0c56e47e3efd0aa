"""The console's ASGI app: OTLP/HTTP receiver, health and lag overview, trace pages."""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from console import bus_pages, otlp, pages
from console.auth import OidcClient, SessionMiddleware, Sessions, session_key
from console.figures import FiguresSource
from console.figures import page as figures_page
from console.health import LagReader, Probe, probe_all
from console.search import TraceQuery
from console.signin import sign_in_routes
from console.store import SpanStore
from console.templating import templates
from lgsp import otlp_token
from lgsp.config import Endpoint, Settings, mask_url, peer
from lgsp.tls import TLS_SCHEMES

log = logging.getLogger("console")

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
SEARCH_LIMIT = 100


def create_app(
    settings: Settings, *, store: SpanStore | None = None, oidc: OidcClient | None = None
) -> Starlette:
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
    data_dir = settings.platform.data_dir
    token = otlp_token.installation_token(data_dir, settings.console.otlp_token)
    sessions = Sessions(session_key(data_dir), settings.console.session_hours * 3600)
    oidc = oidc or OidcClient(settings)
    quiet_until = [0.0]

    async def receive_traces(request: Request) -> Response:
        if not otlp_token.matches(request.headers.get(otlp_token.HEADER), token):
            # Its access line is filtered out (__main__): say it here, once a minute at most.
            if time.monotonic() >= quiet_until[0]:
                quiet_until[0] = time.monotonic() + 60
                peer = request.client.host if request.client else "?"
                log.warning("refused spans from %s: missing or wrong %s", peer, otlp_token.HEADER)
            return PlainTextResponse(
                f"spans are accepted only from this platform's processes ({otlp_token.HEADER})",
                status_code=401,
            )
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

    async def overview(request: Request) -> Response:
        from lgsp.runner import describe, discover, read_state

        components = await run_in_threadpool(discover)
        supervised = (await run_in_threadpool(read_state, settings) or {}).get("components", {})
        installed = {c.name for c in components}
        kinds = {c.name: c.kind for c in components}
        # Probed where the console's peers reach them (their `address`), not where they bind.
        endpoints = [
            peer(settings, ep.component).reach(ep)
            for ep in settings.endpoints()
            if ep.component != "console"
        ]
        probes = await probe_all(
            [ep for ep in endpoints if ep.component in installed], settings=settings
        )
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
        schemes = TLS_SCHEMES if settings.tls.enabled else None
        context = pages.overview(rows, lag, count, summary, schemes)
        return templates.TemplateResponse(request, "overview.html", context)

    async def traces(request: Request) -> Response:
        try:
            q, form = query_from_params(request.query_params)
            error = ""
        except ValueError as exc:
            q, form, error = TraceQuery(), dict(request.query_params), str(exc)
        found = [] if error else await run_in_threadpool(store.search, q, SEARCH_LIMIT)
        services = await run_in_threadpool(store.services)
        form.setdefault("min_ms", "")
        form.setdefault("from", "")
        form.setdefault("to", "")
        context = {
            "q": q,
            "form": form,
            "traces": found,
            "services": services,
            "error": error,
            "limit": SEARCH_LIMIT,
            "tz": time.strftime("%Z"),
        }
        return templates.TemplateResponse(
            request, "traces.html", context, status_code=400 if error else 200
        )

    async def trace(request: Request) -> Response:
        trace_id = request.path_params["trace_id"].lower()
        spans = await run_in_threadpool(store.trace, trace_id) if TRACE_ID.match(trace_id) else []
        if not spans:
            context = {
                "title": "Not found",
                "heading": "Trace not found",
                "message": "It may have been pruned, or not arrived yet.",
            }
            return templates.TemplateResponse(request, "not_found.html", context, status_code=404)
        context = {"trace_id": trace_id, **pages.waterfall_rows(spans)}
        return templates.TemplateResponse(request, "trace.html", context)

    async def service_map_page(request: Request) -> Response:
        hours = request.query_params.get("hours", "1")
        hours_n = int(hours) if hours in {"1", "6", "24"} else 1
        since = time.time_ns() - hours_n * 3600 * 10**9
        nodes, edges = await run_in_threadpool(store.service_map, since)
        context = {"hours": hours_n, **pages.map_layout(nodes, edges)}
        if not nodes:
            context["nodes"] = []
        return templates.TemplateResponse(request, "service_map.html", context)

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
            await oidc.aclose()
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
            Route("/service-map", service_map_page),
            Route("/v1/traces", receive_traces, methods=["POST"]),
            Route("/healthz", healthz),
            *sign_in_routes(sessions, oidc),
            Mount("/static", StaticFiles(packages=[("console", "static")]), name="static"),
            Route("/metrics", metrics),
        ],
        middleware=[Middleware(SessionMiddleware, sessions=sessions)],
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


def query_from_params(params: Mapping[str, str]) -> tuple[TraceQuery, dict[str, str]]:
    """The search form's fields as a TraceQuery; ValueError (shown on the page) if malformed."""
    form = {k: params.get(k, "").strip() for k in ("min_ms", "from", "to")}
    trace_id = params.get("trace_id", "").strip().lower()
    if trace_id and not TRACE_ID.match(trace_id):
        raise ValueError("a trace id is 32 hexadecimal digits")
    min_ns = 0
    if form["min_ms"]:
        try:
            min_ms = float(form["min_ms"])
        except ValueError:
            raise ValueError("min duration must be a number of milliseconds") from None
        if not 0 <= min_ms <= 86_400_000:
            raise ValueError("min duration must be between 0 and 86400000 ms")
        min_ns = int(min_ms * 1e6)
    bounds: list[int | None] = []
    for name in ("from", "to"):
        value = form[name]
        if not value:
            bounds.append(None)
            continue
        try:
            bounds.append(int(datetime.fromisoformat(value).timestamp() * 1e9))
        except (ValueError, OverflowError, OSError):
            raise ValueError(f"{name} must be a date and time (YYYY-MM-DDTHH:MM)") from None
    q = TraceQuery(
        service=params.get("service", "").strip()[:200],
        operation=params.get("operation", "").strip()[:500],
        errors_only=params.get("status") == "error" or params.get("errors") == "1",
        min_duration_ns=min_ns,
        start_ns=bounds[0],
        end_ns=bounds[1],
        trace_id=trace_id,
        key=params.get("key", "").strip()[:200],
    )
    return q, form
