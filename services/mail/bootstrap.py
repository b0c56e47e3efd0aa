"""Wiring: configuration → agency tree, use cases, gRPC servicer, SMTP and IMAP servers,
identity's events. `wire_service(runtime)` is the plugin's composition root; tests pass
their own directory, authenticator, password check, clock, SMTP and IMAP ports."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from lgsp.agencies import follow_identity, service_secret
from lgsp.api.mail.v1 import mail_pb2_grpc
from lgsp.app import ServiceRuntime
from lgsp.auth import Authenticator
from lgsp.authn import JwtAuthenticator, authenticator_from_settings, issuer_from_settings
from lgsp.config import Settings, peer
from lgsp.plugins import Subscription, Wiring
from lgsp.tls import files as tls_files
from lgsp.tls import https_verify
from lgsp.workdays import WorkingCalendar
from services.mail.adapters.dkim_keys import DkimKeys, keys_from_settings
from services.mail.adapters.identity_login import IdentityPasswords
from services.mail.adapters.mail_auth import InboundChecks, make_resolver
from services.mail.adapters.smarthost import Smarthost
from services.mail.adapters.smime import DevCASmime
from services.mail.adapters.tls import ensure_self_signed, server_context
from services.mail.entrypoints.grpc import MailServicer
from services.mail.entrypoints.imap import imap_task
from services.mail.entrypoints.logins import MailLogins, Passwords
from services.mail.entrypoints.smtp import smtp_task
from services.mail.service_layer.base import AgencyDirectory
from services.mail.service_layer.identity_events import user_subscription
from services.mail.service_layer.mail import MailApp, MailRules
from services.mail.service_layer.notice_events import notice_subscription
from services.mail.service_layer.relay import Relay, RelayPolicy
from services.mail.settings import MailSettings, host_port, retry_schedule

log = logging.getLogger("services.mail")
PURGE_INTERVAL_S = 3600.0
NOTICES_INTERVAL_S = 60.0  # reminders and digests are due at a day or an hour: a minute is fine


def wire_service(
    runtime: ServiceRuntime,
    *,
    agencies: AgencyDirectory | None = None,
    authenticator: Authenticator | None = None,
    passwords: Passwords | None = None,
    clock: Callable[[], datetime] | None = None,
    smtp_ports: tuple[int, int] | None = None,
    on_smtp_listening: Callable[[str, int], None] | None = None,
    notices_interval: float = NOTICES_INTERVAL_S,
    imap_ports: tuple[int, int] | None = None,
    on_imap_listening: Callable[[str, int], None] | None = None,
) -> Wiring:
    """The mail plugin's composition root; `app` is the MailApp. `smtp_ports` (submission,
    inbound) and `imap_ports` (imap, imaps) override the settings (tests pass 0, 0 and learn
    the ports from `on_smtp_listening(kind, port)` / `on_imap_listening(kind, port)`);
    `notices_interval` is the reminders' and digests' period (0: not run; tests drive them
    with their own clock)."""
    settings = runtime.settings
    section = settings.mail
    background: list[Any] = []
    closers: list[Any] = []
    subscriptions: list[Subscription] = []
    if agencies is None:  # identity's tree, kept current from its events
        followed = follow_identity(settings, "mail")
        agencies = followed.directory
        subscriptions.extend(followed.subscriptions)
        background.extend(followed.background)
        closers.extend(followed.closers)
    hostname = section.smtp_hostname or socket.gethostname()
    rules = MailRules(
        default_domain=section.default_domain,
        quota_bytes=section.quota_bytes,
        max_message_bytes=section.max_message_bytes,
        max_recipients=section.max_recipients,
        retention_days=section.retention_days,
        hostname=hostname,
        notice_address=section.notice_address.lower(),
        notice_sender_name=section.notice_sender_name,
        dossier_lookup_url=lookup_url(settings),
        task_reminder_days=section.task_reminder_days,
        digest_hour=section.digest_hour,
    )
    options: dict[str, Any] = {"clock": clock} if clock else {}
    smime = DevCASmime(
        section.ca_dir or settings.data_dir / "ca", auto_issue=section.smime_auto_issue
    )
    app = MailApp(
        runtime.engine,
        agencies,
        rules,
        after_commit=runtime.after_commit,
        smime=smime,
        **options,
    )
    app.calendar = WorkingCalendar.from_settings(settings.calendar)
    subscriptions.append(user_subscription(app))
    subscriptions.append(notice_subscription(app))
    authenticator = authenticator or authenticator_from_settings(settings)
    if passwords is None:
        if not isinstance(authenticator, JwtAuthenticator):
            raise TypeError("SMTP AUTH needs a JwtAuthenticator or a `passwords` option")
        identity_passwords = IdentityPasswords(
            issuer_from_settings(settings),
            section.client_id,
            lambda: service_secret(settings, section.client_id, section.client_secret),
            authenticator.verify,
            tls=https_verify(settings),
        )
        closers.append(identity_passwords.aclose)
        passwords = identity_passwords
    if section.tls_cert_file:
        cert, key = Path(section.tls_cert_file), Path(section.tls_key_file)
    elif settings.tls.enabled:  # the platform's certificate, which its clients already trust
        platform_tls = tls_files(settings)
        cert, key = platform_tls.cert_file, platform_tls.key_file
    else:
        cert, key = ensure_self_signed(settings.data_dir / "mail-tls", hostname)
    tls = server_context(cert, key)
    submission_port, inbound_port = smtp_ports or (
        section.smtp_submission_port,
        section.smtp_inbound_port,
    )
    checks = InboundChecks(
        make_resolver(section.dns_resolver), authserv_id=hostname, budget_s=section.dns_budget_s
    )
    # One login check (and one per-address failure window) for SMTP AUTH and IMAP LOGIN.
    logins = MailLogins(app, passwords)
    for kind, port in (("submission", submission_port), ("inbound", inbound_port)):
        background.append(
            smtp_task(
                app,
                host=settings.platform.host,
                port=port,
                hostname=hostname,
                tls=tls,
                submission=kind == "submission",
                logins=logins,
                checks=None if kind == "submission" else checks,
                on_listening=_reporter(on_smtp_listening, kind),
            )
        )
    imap_port, imaps_port = imap_ports or (section.imap_port, section.imaps_port)
    for kind, port in (("imap", imap_port), ("imaps", imaps_port)):
        background.append(
            imap_task(
                app,
                logins,
                host=settings.platform.host,
                port=port,
                hostname=hostname,
                tls=tls,
                implicit_tls=kind == "imaps",
                recheck_s=section.imap_recheck_seconds,
                on_listening=_reporter(on_imap_listening, kind),
            )
        )
    background.append(purge_task(app))
    if section.smarthost:
        keys = keys_from_settings(settings)
        background.append(relay_task(build_relay(app, section, keys), keys))
    else:
        log.warning("[mail] smarthost is not set: mail for outside the province stays queued")
    if notices_interval > 0:
        background.append(notices_task(app, notices_interval))
    return Wiring(
        servicers=[(mail_pb2_grpc.add_MailServiceServicer_to_server, MailServicer(app))],
        subscriptions=subscriptions,
        authenticator=authenticator,
        background=background,
        closers=closers,
        app=app,
    )


def _reporter(report: Callable[[str, int], None] | None, kind: str) -> Callable[[int], None] | None:
    return None if report is None else (lambda port: report(kind, port))


def purge_task(app: MailApp) -> Callable[[asyncio.Event], Any]:
    """Purge the mail of mailboxes disabled past the retention period, hourly."""

    async def purge_disabled(stop: asyncio.Event) -> None:
        while not stop.is_set():
            purged = await asyncio.to_thread(app.purge_expired)
            if purged:
                log.info("purged the mail of %d disabled mailboxes", len(purged))
            try:
                await asyncio.wait_for(stop.wait(), PURGE_INTERVAL_S)
            except TimeoutError:
                pass

    return purge_disabled


def build_relay(app: MailApp, section: MailSettings, keys: DkimKeys, *, worker: str = "") -> Relay:
    """A relay worker over `app`'s queue to [mail] smarthost (tests make several)."""
    host, port = host_port(section.smarthost)
    transport = Smarthost(
        host,
        port,
        tls=section.smarthost_tls,
        ca_file=section.smarthost_ca_file,
        user=section.smarthost_user,
        password=section.smarthost_password,
        helo=app.rules.hostname,
    )
    policy = RelayPolicy(
        retry_schedule_s=retry_schedule(section.retry_schedule_s),
        bounce_after_s=section.bounce_after_s,
        lease_s=section.relay_lease_s,
        interval_s=section.relay_interval_s,
    )
    return Relay(app, transport, keys, policy, worker=worker)


def relay_task(relay: Relay, keys: DkimKeys) -> Callable[[asyncio.Event], Any]:
    """Relay the outgoing queue every [mail] relay_interval_s (at once again after a full
    batch); the DKIM keys of the domains known now are made first (docs/mail.md)."""
    interval = relay.policy.interval_s

    async def relay_outgoing(stop: asyncio.Event) -> None:
        for domain in sorted(relay.app.local_domains()):
            await asyncio.to_thread(keys.private_pem, domain)
        while not stop.is_set():
            try:
                taken = await asyncio.to_thread(relay.run_once)
            except Exception:
                log.exception("relay pass failed; trying again")
                taken = 0
            if taken >= relay.policy.batch:
                continue
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                pass

    return relay_outgoing


def lookup_url(settings: Settings) -> str:
    """The citizens' lookup page: `[mail] dossier_lookup_url`, else the dossiers service's
    public address (its settings section, never its code) + /tra-cuu."""
    own = str(settings.mail.dossier_lookup_url)
    if own:
        return own.rstrip("/")
    dossiers = settings.services.get("dossiers")
    if dossiers is None:
        return ""
    base = getattr(dossiers, "public_url", "") or (
        peer(settings, "dossiers").url(getattr(dossiers, "http_port", 0))
    )
    return f"{str(base).rstrip('/')}/tra-cuu"


def notices_task(
    app: MailApp, interval: float = NOTICES_INTERVAL_S
) -> Callable[[asyncio.Event], Any]:
    """Directive-task reminders and the daily digests, every minute."""

    async def notices(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                reminded = await asyncio.to_thread(app.remind_tasks)
                digests = await asyncio.to_thread(app.send_digests)
                if reminded or digests:
                    log.info("sent %d task reminders, %d daily digests", reminded, digests)
            except Exception:
                log.exception("task reminders / daily digests failed; retrying next round")
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                pass

    return notices
