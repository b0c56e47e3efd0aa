"""The [mail] settings section: LGSP_MAIL_<KEY> or [mail] in lgsp.toml."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lgsp.config import (
    Endpoint,
    ServiceSettings,
    choice_field,
    num_field,
    port_field,
    secret_field,
    url_field,
)

DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
MIB = 1024 * 1024
HOST_PORT = re.compile(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}")
SELECTOR = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def retry_schedule(text: str) -> tuple[float, ...]:
    """ "60,300,900" → (60.0, 300.0, 900.0); ValueError when empty or not positive."""
    values = tuple(float(v) for v in text.split(",") if v.strip())
    if not values or any(v <= 0 for v in values):
        raise ValueError(text)
    return values


def host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


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
    # --- the relay of mail for outside recipients (docs/mail.md "Relay and bounces") ---
    # The smarthost, "host:port"; "" = outside mail stays queued (warned at start).
    smarthost: str = ""
    # STARTTLS to the smarthost: opportunistic (when offered, certificate not verified, like
    # Postfix's "may"), required (offered and the certificate verified, else retried later),
    # none (plain text, for a smarthost on the same host or network).
    smarthost_tls: str = choice_field("opportunistic", "opportunistic", "required", "none")
    # CA certificates (PEM) for smarthost_tls = "required"; "" = the system's store.
    smarthost_ca_file: str = ""
    # AUTH at the smarthost (only ever over TLS unless smarthost_tls = "none"); "" = none.
    smarthost_user: str = ""
    smarthost_password: str = secret_field()
    # Seconds to wait after the 1st, 2nd, ... temporary failure (the last one repeats).
    retry_schedule_s: str = "60,300,900,3600,7200,14400"
    # A message not delivered this long after it was queued bounces (Postfix's
    # maximal_queue_lifetime: 5 days).
    bounce_after_s: int = num_field(5 * 86400, 60)
    # How often the relay looks for due rows, and how long a claimed row stays with one
    # relay worker before another may take it (a worker that died mid-send).
    relay_interval_s: float = num_field(5.0, 0.05, 3600)
    relay_lease_s: float = num_field(300.0, 1, 86400)
    # DKIM (RFC 6376) on mail leaving through the relay: the selector, and a PEM RSA key
    # for every domain; "" = a key per domain made at first use in <data_dir>/mail-dkim/.
    dkim_selector: str = "lgsp"
    dkim_key_file: str = ""
    # DNS server for SPF and DKIM lookups, "host:port"; "" = the system's resolver.
    dns_resolver: str = ""
    # Seconds all SPF and DKIM lookups of one inbound message may take together; past it
    # the result is temperror (the SMTP session never waits longer).
    dns_budget_s: float = num_field(5.0, 0.1, 30)
    # Notices (docs/mail.md "Notifications"): the SYSTEM mailbox they come from ("" =
    # thongbao@<default_domain>, made on first need) and the name they are signed with.
    notice_address: str = ""
    notice_sender_name: str = "Hệ thống LGSP tỉnh Hà Tĩnh"
    # The citizens' dossier lookup page named in their notices ("" = the dossiers service's
    # public_url + "/tra-cuu", read from its settings section when it is installed).
    dossier_lookup_url: str = url_field("", "http", "https")
    # "Sắp đến hạn" is sent when a directive task's deadline is this many working days away.
    task_reminder_days: int = num_field(1, 0, 30)
    # Hour (province time, 0-23) at which the daily digest goes out.
    digest_hour: int = num_field(7, 0, 23)
    # The development CA that S/MIME signs and verifies with; "" = <data_dir>/ca, the one
    # documents signs PDFs with (lgsp/ca.py).
    ca_dir: str = ""
    # An official without a valid certificate carrying their mail address gets one on their
    # first signed message (embedded default); false = only `lgsp documents ca issue`.
    smime_auto_issue: bool = True

    def problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if not DOMAIN.fullmatch(self.default_domain):
            problems.append(("default_domain", "a lowercase domain such as hatinh.gov.vn"))
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            problems.append(
                ("tls_cert_file", "set both tls_cert_file and tls_key_file, or neither")
            )
        for key in ("smarthost", "dns_resolver"):
            if getattr(self, key) and not HOST_PORT.fullmatch(getattr(self, key)):
                problems.append((key, "host:port, e.g. 127.0.0.1:25"))
        try:
            retry_schedule(self.retry_schedule_s)
        except ValueError:
            problems.append(("retry_schedule_s", "comma-separated seconds, e.g. 60,300,900"))
        if not SELECTOR.fullmatch(self.dkim_selector):
            problems.append(("dkim_selector", "a DNS label such as lgsp"))
        if self.notice_address and (
            "@" not in self.notice_address or any(c in self.notice_address for c in " \r\n<>")
        ):
            problems.append(("notice_address", "a mail address such as thongbao@hatinh.gov.vn"))
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
