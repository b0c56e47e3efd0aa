"""The [gateway] settings section."""

from __future__ import annotations

from dataclasses import dataclass

from lgsp.config import ServiceSettings, num_field, port_field


@dataclass(frozen=True)
class GatewaySettings(ServiceSettings):
    grpc_port: int = port_field(50050)
    # Per member, unless the member or a right sets its own; burst = that many seconds of calls.
    rate_per_minute: int = num_field(60_000, 1)
    burst_seconds: float = num_field(1.0, 0.001, 3600)
    max_concurrent_per_member: int = num_field(64, 1, 100_000)
    # The message log is signed every so many entries or seconds, whichever comes first.
    seal_every_entries: int = num_field(1000, 1, 1_000_000)
    seal_every_seconds: float = num_field(5.0, 0.01, 3600)
    # Entries older than this are deleted (whole sealed batches) by `lgsp log retain`; 0 = keep.
    log_retention_days: int = num_field(0, 0, 36_500)
    # Second, TLS port for member systems (0 = off); with tls_client_ca, mutual TLS is required
    # and a member's certificate (its SHA-256 in the registry) names it. PEM file paths.
    tls_port: int = num_field(0, 0, 65535)
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    # Calls without a token to the methods services declare public (the citizens' dossier
    # lookup, the procedure catalogue), per caller address: a minute's calls and the burst.
    # Generous: a ward's office or a mobile carrier's NAT puts many citizens behind one
    # address; the service keeps its own, tighter limit per citizen (x-forwarded-for).
    public_per_minute: int = num_field(600, 1)
    public_burst: int = num_field(60, 1)
    # Register the platform's own services as members with the rights they need (the dossiers
    # service on the national API); for the demo (`make run`), like identity.demo_seed.
    demo_seed: bool = False

    def problems(self) -> list[tuple[str, str]]:
        if self.tls_port and not (self.tls_cert and self.tls_key):
            return [("tls_port", "gateway.tls_port needs tls_cert and tls_key")]
        return []
