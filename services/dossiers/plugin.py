"""The dossiers service as a platform plugin: what `lgsp up`, `lgsp run dossiers`, the
settings, the gateway and the `lgsp` command read. Keep this module light: discovery imports
it in every process; `wire` and `cli` are imported when used."""

from __future__ import annotations

from pathlib import Path

from lgsp.plugins import Plugin
from services.dossiers.settings import DossiersSettings

PLUGIN = Plugin(
    name="dossiers",
    description="one-stop desk: procedures and dossiers",
    settings=DossiersSettings,
    wire="services.dossiers.bootstrap:wire_service",
    migrations=Path(__file__).parent / "migrations",
    cli="services.dossiers.cli:register",
    # The gateway routes calls of lgsp.api.dossiers.v1 to this service's gRPC port.
    routes=("dossiers",),
    # Without a token, here and through the gateway: the citizens' lookup and rating (a
    # receipt code and its verification) and the procedure catalogue, public as on the
    # national portal (inactive procedures still need role admin).
    public_methods=(
        "/lgsp.api.dossiers.v1.DossierLookupService/LookupDossier",
        "/lgsp.api.dossiers.v1.DossierLookupService/RateDossier",
        "/lgsp.api.dossiers.v1.ProcedureService/GetProcedure",
        "/lgsp.api.dossiers.v1.ProcedureService/ListProcedures",
        "/lgsp.api.dossiers.v1.ProcedureService/ListFields",
    ),
    order=50,
)
