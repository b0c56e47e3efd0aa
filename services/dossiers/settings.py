"""The [dossiers] settings section: LGSP_DOSSIERS_<KEY> or [dossiers] in lgsp.toml."""

from __future__ import annotations

from dataclasses import dataclass

from lgsp.config import Endpoint, ServiceSettings, port_field, secret_field


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
    # Base URL citizens reach the lookup page at (printed as the slip's QR code, with
    # /tra-cuu?ma=<receipt code>); "" = http://<platform host>:<http_port>.
    public_url: str = ""
    # The public lookup (gRPC and page) per client address: calls a minute, and the burst.
    lookup_per_minute: int = 30
    lookup_burst: int = 10
    # Seed the procedure catalogue (services/dossiers/catalogue.json) into an empty database.
    seed_catalogue: bool = True

    def endpoints(self, name: str, host: str) -> list[Endpoint]:
        return [
            *super().endpoints(name, host),
            Endpoint(name, "http", host, self.http_port, "public lookup, payment callbacks"),
        ]

    def problems(self) -> list[tuple[str, str]]:
        from services.dossiers.domain.deadlines import parse_cutoff

        try:
            parse_cutoff(self.cutoff)
        except ValueError as e:
            return [("cutoff", str(e))]
        return []
