"""The [mail] settings section: LGSP_MAIL_<KEY> or [mail] in lgsp.toml."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lgsp.config import Endpoint, ServiceSettings, num_field, port_field, secret_field

DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
MIB = 1024 * 1024


@dataclass(frozen=True)
class MailSettings(ServiceSettings):
    """Inherited: grpc_port, database_url ("" = sqlite:///<data_dir>/mail.db)."""

    grpc_port: int = port_field(50055)
    # Submission (RFC 6409): officials' mail clients, STARTTLS then AUTH required. Not 587:
    # the platform runs unprivileged beside the province's own mail system.
    smtp_submission_port: int = port_field(2587)
    # Inbound (MX-style): mail from other servers to local mailboxes only, no AUTH, no relay.
    smtp_inbound_port: int = port_field(2525)
    # IMAP (RFC 3501) for officials' mail clients: STARTTLS before LOGIN on imap_port,
    # implicit TLS on imaps_port (RFC 8314). Not 143/993, as for SMTP.
    imap_port: int = port_field(2143)
    imaps_port: int = port_field(2993)
    # Seconds after which an IMAP session reads its folder again even when this process saw
    # no change (another mail process on the same database may have written).
    imap_recheck_seconds: float = num_field(10.0, 0.5, 3600.0)
    # Name the SMTP servers greet with and the certificate is made for; "" = this host's name.
    smtp_hostname: str = ""
    # PEM certificate and key for STARTTLS; "" = a self-signed pair made at first start in
    # <data_dir>/mail-tls/ (fine for a pilot; a province installs its CA-issued one).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # The province's mail domain, for agencies whose identity record (and whose parents')
    # carries no mail_domain (docs/mail.md, "Addresses").
    default_domain: str = "hatinh.gov.vn"
    # The service's own client at identity: agency tree, and officials' passwords checked
    # with the password grant at SMTP AUTH. "" secret = read <data_dir>/identity-demo.json.
    client_id: str = "mail"
    client_secret: str = secret_field()
    # Storage quota of a new mailbox in bytes (0 = unlimited).
    quota_bytes: int = num_field(2048 * MIB, 0)
    # Largest message accepted (SMTP SIZE and SendMessage); the contract says 25 MiB.
    max_message_bytes: int = num_field(25 * MIB, 1024, 100 * MIB)
    # Recipients per message.
    max_recipients: int = num_field(100, 1, 1000)
    # Days a disabled account's mailbox keeps its mail before it is purged (the address
    # stays reserved for good: it is never handed to someone else).
    retention_days: int = num_field(90, 1, 3650)

    def problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if not DOMAIN.fullmatch(self.default_domain):
            problems.append(("default_domain", "a lowercase domain such as hatinh.gov.vn"))
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            problems.append(
                ("tls_cert_file", "set both tls_cert_file and tls_key_file, or neither")
            )
        if self.smtp_submission_port == self.smtp_inbound_port:
            problems.append(("smtp_inbound_port", "must differ from smtp_submission_port"))
        return problems

    def endpoints(self, name: str, host: str) -> list[Endpoint]:
        return [
            *super().endpoints(name, host),
            Endpoint(name, "smtp", host, self.smtp_submission_port, "submission, STARTTLS + AUTH"),
            Endpoint(name, "smtp", host, self.smtp_inbound_port, "inbound to local mailboxes"),
            Endpoint(name, "imap", host, self.imap_port, "IMAP, STARTTLS + LOGIN"),
            Endpoint(name, "imaps", host, self.imaps_port, "IMAP over TLS"),
        ]
