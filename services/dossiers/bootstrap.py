"""Wiring: configuration → agency directory, working-day calendar, use cases, gRPC servicers.
`wire_service(runtime)` is the plugin's composition root; tests pass their own directory,
authenticator and clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from lgsp.agencies import follow_identity
from lgsp.api.dossiers.v1 import dossiers_pb2_grpc
from lgsp.app import ServiceRuntime
from lgsp.auth import Authenticator
from lgsp.authn import authenticator_from_settings
from lgsp.config import peer
from lgsp.connectors import PaymentClient
from lgsp.connectors.http import ClientOptions
from lgsp.http_server import asgi_task
from lgsp.national_api import NationalApi
from lgsp.netaddr import TrustedProxies, parse_addresses
from lgsp.plugins import Subscription, Wiring
from lgsp.ratelimit import KeyedBuckets
from lgsp.tls import uvicorn_ssl
from lgsp.workdays import WorkingCalendar
from services.dossiers.adapters.national import GatewayApplicantVerifier
from services.dossiers.adapters.payment_platform import PaymentPlatform
from services.dossiers.catalogue import load_catalogue
from services.dossiers.domain.deadlines import DueDateRule, parse_cutoff
from services.dossiers.entrypoints.grpc import (
    DossierLookupServicer,
    DossierServicer,
    ProcedureServicer,
)
from services.dossiers.entrypoints.http import build_http_app
from services.dossiers.entrypoints.lookup_http import LookupPage
from services.dossiers.entrypoints.payment_http import CALLBACK_PATH, payment_routes
from services.dossiers.entrypoints.portal_http import portal_routes
from services.dossiers.national_portal import PUSH_PATH, portal_from_settings
from services.dossiers.plugin import PLUGIN
from services.dossiers.service_layer.dossiers import AgencyDirectory, DossiersApp
from services.dossiers.service_layer.reconciliation import reconcile_task
from services.dossiers.service_layer.verification import ApplicantVerifier, NoVerification


def wire_service(
    runtime: ServiceRuntime,
    *,
    agencies: AgencyDirectory | None = None,
    authenticator: Authenticator | None = None,
    clock: Callable[[], datetime] | None = None,
    http_port: int | None = None,
    portal_options: ClientOptions | None = None,
    verifier: ApplicantVerifier | None = None,
) -> Wiring:
    """The dossiers plugin's composition root; `app` is the DossiersApp. Called inside the
    runtime's event loop (the verifier hands its national calls to that loop)."""
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
    if verifier is None and section.verify_applicants:
        api = NationalApi.from_settings(
            settings, service="dossiers", timeout_s=section.verify_timeout_s
        )
        closers.append(api.aclose)
        verifier = GatewayApplicantVerifier(
            api, asyncio.get_running_loop(), timeout_s=section.verify_timeout_s
        )
    options: dict[str, Any] = {"clock": clock} if clock else {}
    port = http_port or section.http_port
    public_url = section.public_base(peer(settings, "dossiers").url(port))
    app = DossiersApp(
        runtime.engine,
        agencies,
        rule,
        after_commit=runtime.after_commit,
        verifier=verifier or NoVerification(),
        public_url=public_url,
        **options,
    )
    if section.seed_catalogue:
        app.seed(load_catalogue())
    # The national portal: its pushes (HTTP), the catch-up pulls, the status sync.
    portal = portal_from_settings(settings, app, agencies, port, portal_options)
    background.append(portal.run)
    subscriptions.append(portal.sync_subscription())
    # Fees online: the national payment platform, its notices, reconciliation.
    payment_client = PaymentClient.from_settings(settings)
    closers.append(payment_client.aclose)
    platform = PaymentPlatform(payment_client, public_url + CALLBACK_PATH)
    app.use_payment_platform(platform)
    if section.payment_reconcile_interval_s:
        background.append(reconcile_task(app, platform, section.payment_reconcile_interval_s))
    # One bucket per client address for the public lookup, over gRPC and on the page alike.
    lookup_limits = KeyedBuckets(section.lookup_per_minute, section.lookup_burst)
    routes = [
        *portal_routes(portal.take_in, lambda: portal.secret, PUSH_PATH),
        *payment_routes(
            app, section.payment_callback_secret, max_age_s=section.payment_callback_max_age_s
        ),
        *LookupPage(app, lookup_limits).routes(),
    ]
    background.append(
        asgi_task(build_http_app(routes), settings.platform.host, port, ssl=uvicorn_ssl(settings))
    )
    return Wiring(
        servicers=[
            # The RPCs not built yet (docs/dossiers.md) answer UNIMPLEMENTED from the
            # generated base classes, which the type stubs declare abstract.
            (
                dossiers_pb2_grpc.add_ProcedureServiceServicer_to_server,
                ProcedureServicer(app),
            ),
            (
                dossiers_pb2_grpc.add_DossierServiceServicer_to_server,
                DossierServicer(app),
            ),
            (
                dossiers_pb2_grpc.add_DossierLookupServiceServicer_to_server,
                DossierLookupServicer(
                    app, lookup_limits, TrustedProxies(parse_addresses(section.trusted_proxies))
                ),
            ),
        ],
        subscriptions=subscriptions,
        authenticator=authenticator or authenticator_from_settings(settings),
        public_methods=PLUGIN.public_methods,  # one list: the gateway reads it too
        background=background,
        closers=closers,
        app=app,
    )
