"""The [dossiers] settings section: LGSP_DOSSIERS_<KEY> or [dossiers] in lgsp.toml."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lgsp.config import (
    HTTP_SCHEMES,
    Endpoint,
    ServiceSettings,
    num_field,
    port_field,
    secret_field,
    url_field,
)
from lgsp.netaddr import address_problems


@dataclass(frozen=True)
class DossiersSettings(ServiceSettings):
    """Inherited: grpc_port, database_url ("" = sqlite:///<data_dir>/dossiers.db)."""

    grpc_port: int = port_field(50053)
    # The citizens' pages (public lookup) and the national payment platform's callbacks.
    http_port: int = port_field(8183)
    # The service's own client at identity (for GetAgencyTree); "" secret = read the demo
    # secrets identity writes to <data_dir>/identity-demo.json on first start.
    client_id: str = "dossiers"
    client_secret: str = secret_field()
    # Afternoon cut-off, HH:MM province time: a dossier received at or after it counts from the
    # next working day (docs/dossiers.md says why 15:00).
    cutoff: str = "15:00"
    # Base URL of this service's HTTP side as citizens and the payment platform reach it: the
    # lookup page (the slip's QR code, /tra-cuu?ma=<receipt code>) and the platform's notices;
    # "" = http://<host its peers reach it at ([dossiers] address)>:<http_port>; behind a
    # proxy, the public https URL.
    public_url: str = url_field("", *HTTP_SCHEMES)
    # The public lookup (gRPC and page) per client address: calls a minute, and the burst.
    lookup_per_minute: int = 30
    lookup_burst: int = 10
    # Whose x-forwarded-for the public lookup believes (comma-separated addresses or CIDR
    # networks): the gateway, which appends each citizen's address, so each citizen has a
    # bucket; the default is the gateway on this host (`lgsp up`). Anyone else is the client.
    trusted_proxies: str = "127.0.0.1"
    # Seed the procedure catalogue (services/dossiers/catalogue.json) into an empty database.
    seed_catalogue: bool = True
    # The national public service portal (docs/dossiers.md, "Online and postal intake"):
    # the province's code at the portal ("H27"); "" = the provinces of the agency tree's codes.
    portal_province: str = ""
    # Register the push URL and secret at the portal at start (false: catch-up pulls only).
    portal_subscribe: bool = True
    # Where the portal pushes online dossiers; "" = http://<host>:<http_port>/portal/v1/dossiers.
    portal_push_url: str = url_field("", *HTTP_SCHEMES)
    # The secret pushes are signed with (HMAC-SHA256); "" = a random one made at each start
    # and registered with the portal (fine while the province registers its own subscription).
    portal_push_secret: str = secret_field()
    # Seconds between catch-up pulls of the portal's handover (online dossiers missed by push).
    portal_poll_seconds: float = num_field(30.0, 0.05, 3600)
    # Verify applicants at intake against the national population database and business
    # registry, through the gateway's national API (the client_id above is the member).
    verify_applicants: bool = True
    # Seconds one national check through the gateway may take before intake answers UNAVAILABLE.
    verify_timeout_s: float = num_field(5.0, 0.1, 60.0)
    # Fees online through the national payment platform ([national] payment_port): the secret
    # it signs its payment notices with (issued by the platform; the default is the mock's,
    # lgsp.connectors.payment.DEFAULT_CALLBACK_SECRET), how old a notice may be, and the base
    # URL the platform calls back ("" = public_url, else the [dossiers] address host, right for
    # `make run`; behind a proxy, the public https URL).
    payment_callback_secret: str = secret_field("lgsp-dev-callback-secret")
    payment_callback_max_age_s: int = 300
    # Reconcile today's and yesterday's online payments with the platform every N seconds
    # (0 = only `lgsp dossiers reconcile`).
    payment_reconcile_interval_s: int = 3600

    def endpoints(self, name: str, host: str) -> list[Endpoint]:
        return [
            *super().endpoints(name, host),
            Endpoint(name, "http", host, self.http_port, "public lookup, payment callbacks"),
        ]

    def problems(self) -> list[tuple[str, str]]:
        from services.dossiers.domain.deadlines import parse_cutoff

        problems: list[tuple[str, str]] = []
        try:
            parse_cutoff(self.cutoff)
        except ValueError as e:
            problems.append(("cutoff", str(e)))
        if self.portal_province and not re.fullmatch(r"[A-Z]\d{2}", self.portal_province):
            problems.append(("portal_province", "a province code such as H27, or empty"))
        if self.portal_push_secret and len(self.portal_push_secret) < 16:
            problems.append(("portal_push_secret", "at least 16 characters, or empty"))
        if not self.payment_callback_secret:
            problems.append(("payment_callback_secret", "required (the platform's notices)"))
        if self.payment_callback_max_age_s <= 0 or self.payment_reconcile_interval_s < 0:
            problems.append(
                ("payment_callback_max_age_s", "positive; payment_reconcile_interval_s >= 0")
            )
        problems.extend(address_problems("trusted_proxies", self.trusted_proxies))
        return problems

    def public_base(self, reached: str) -> str:
        """Where citizens (the QR on the slip) and the payment platform (its notices) reach
        this service's HTTP side: public_url, else `reached` (its http_port on the host its
        peers reach it at, lgsp.config.peer)."""
        return (self.public_url or reached).rstrip("/")
