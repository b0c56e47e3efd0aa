"""Wiring: configuration → agency directory, working-day calendar, use cases, gRPC servicers.
`wire_service(runtime)` is the plugin's composition root; tests pass their own directory,
authenticator and clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from lgsp.agencies import follow_identity
from lgsp.api.dossiers.v1 import dossiers_pb2_grpc
from lgsp.app import ServiceRuntime
from lgsp.auth import Authenticator
from lgsp.authn import authenticator_from_settings
from lgsp.http_server import asgi_task
from lgsp.plugins import Subscription, Wiring
from lgsp.ratelimit import KeyedBuckets
from lgsp.workdays import WorkingCalendar
from services.dossiers.catalogue import load_catalogue
from services.dossiers.domain.deadlines import DueDateRule, parse_cutoff
from services.dossiers.entrypoints.grpc import (
    LOOKUP_METHOD,
    RATE_METHOD,
    DossierLookupServicer,
    DossierServicer,
    ProcedureServicer,
)
from services.dossiers.entrypoints.http import build_http_app
from services.dossiers.entrypoints.lookup_http import LookupPage
from services.dossiers.service_layer.dossiers import AgencyDirectory, DossiersApp


def wire_service(
    runtime: ServiceRuntime,
    *,
    agencies: AgencyDirectory | None = None,
    authenticator: Authenticator | None = None,
    clock: Callable[[], datetime] | None = None,
    http_port: int | None = None,
) -> Wiring:
    """The dossiers plugin's composition root; `app` is the DossiersApp."""
    settings = runtime.settings
    section = settings.dossiers
    background: list[Any] = []
    closers: list[Any] = []
    subscriptions: list[Subscription] = []
    if agencies is None:  # identity's tree, kept current from its events
        followed = follow_identity(settings, "dossiers")
        agencies = followed.directory
        subscriptions.extend(followed.subscriptions)
        background.extend(followed.background)
        closers.extend(followed.closers)
    rule = DueDateRule(
        WorkingCalendar.from_settings(settings.calendar), parse_cutoff(section.cutoff)
    )
    options: dict[str, Any] = {"clock": clock} if clock else {}
    port = http_port or section.http_port
    public_url = section.public_url or f"http://{settings.platform.host}:{port}"
    app = DossiersApp(
        runtime.engine,
        agencies,
        rule,
        after_commit=runtime.after_commit,
        public_url=public_url,
        **options,
    )
    if section.seed_catalogue:
        app.seed(load_catalogue())
    # One bucket per client address for the public lookup, over gRPC and on the page alike.
    lookup_limits = KeyedBuckets(section.lookup_per_minute, section.lookup_burst)
    routes = [*LookupPage(app, lookup_limits).routes()]
    background.append(asgi_task(build_http_app(routes), settings.platform.host, port))
    return Wiring(
        servicers=[
            # The RPCs not built yet (docs/dossiers.md) answer UNIMPLEMENTED from the
            # generated base classes, which the type stubs declare abstract.
            (
                dossiers_pb2_grpc.add_ProcedureServiceServicer_to_server,
                ProcedureServicer(app),  # type: ignore[abstract]
            ),
            (
                dossiers_pb2_grpc.add_DossierServiceServicer_to_server,
                DossierServicer(app),  # type: ignore[abstract]
            ),
            (
                dossiers_pb2_grpc.add_DossierLookupServiceServicer_to_server,
                DossierLookupServicer(app, lookup_limits),
            ),
        ],
        subscriptions=subscriptions,
        authenticator=authenticator or authenticator_from_settings(settings),
        public_methods=[LOOKUP_METHOD, RATE_METHOD],
        background=background,
        closers=closers,
        app=app,
    )
