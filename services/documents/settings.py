"""The [documents] settings section."""

from __future__ import annotations

from dataclasses import dataclass

from lgsp.config import ServiceSettings, num_field, port_field, secret_field


@dataclass(frozen=True)
class DocumentsSettings(ServiceSettings):
    grpc_port: int = port_field(50052)
    # The service's own client at identity (for GetAgencyTree); "" secret = read the demo
    # secrets identity writes to <data_dir>/identity-demo.json on first start.
    client_id: str = "documents"
    client_secret: str = secret_field()
    # Development CA: a signer without a certificate gets one on first use (embedded default);
    # false = only certificates issued with `lgsp documents ca issue` sign.
    ca_auto_issue: bool = True
    # The national document axis (the document_axis mock in the embedded form): documents for
    # agencies outside the province go there, and the province's mailboxes are polled.
    national_axis: bool = True
    axis_poll_seconds: float = num_field(5.0, 0.1, 3600)
    # While nothing arrives, the wait between polls doubles up to this (at least
    # axis_poll_seconds); a package found or sent brings it back to axis_poll_seconds.
    axis_idle_poll_seconds: float = num_field(30.0, 0.1, 3600)
