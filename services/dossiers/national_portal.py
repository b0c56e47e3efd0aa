"""The province's side of the national public service portal (Cổng Dịch vụ công quốc gia),
through `lgsp.connectors.public_service_portal`:

- **Online intake.** The portal pushes each online dossier (entrypoints/portal_http.py);
  `run` registers where at start and, every `poll_seconds`, pulls the handover for what a
  push missed (the province was down, the push gave up) and takes it in the same way, then
  acknowledges it (a receipt code) or refuses it (the rules' reason) at the portal. Both
  paths go through `take_in`, idempotent by the portal's code, so a dossier pushed and
  pulled at once is still one dossier with one receipt code.
- **Status sync.** `sync_subscription` is a consumer group of its own on the service's
  events: each DossierStatusChanged (keyed by receipt code, so one dossier's changes come
  in order) is reported to the portal, then `portal_synced` is set and DossierPortalSynced
  emitted in the same commit as the processed-event record. While the portal is down or
  slow the handler waits and tries again, holding its place (nothing skipped, nothing
  reordered; the desk never waits for it). The portal recognises a repeat by (receipt code,
  status, time), so a redelivery after a crash reports nothing twice. A refusal that
  retrying cannot change (a 4xx but 429) is dead-lettered with an operator log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

from lgsp.api.dossiers.v1 import events_pb2
from lgsp.config import Settings
from lgsp.connectors.errors import ConnectorError, Unavailable
from lgsp.connectors.http import ClientOptions
from lgsp.connectors.public_service_portal import PortalDossier, PublicServicePortalClient
from lgsp.db import UnitOfWork
from lgsp.events import topic_for
from lgsp.inbox import PermanentError, ReceivedEvent
from lgsp.plugins import Subscription
from lgsp.telemetry import new_trace, tracer, unsampled
from services.dossiers.adapters.portal import (
    MalformedDossier,
    refusal_message,
    submission_from_portal,
)
from services.dossiers.adapters.proto import ts
from services.dossiers.adapters.repository import DossierRepository
from services.dossiers.domain.dossier import Dossier
from services.dossiers.domain.errors import DomainError, InvalidField, NotEligible
from services.dossiers.domain.status import Status
from services.dossiers.service_layer.base import AgencyDirectory
from services.dossiers.service_layer.dossiers import DossiersApp

log = logging.getLogger("services.dossiers.portal")
_tracer = tracer("services.dossiers.national_portal")

SYNC_GROUP = "dossiers-portal-sync"
PUSH_PATH = "/portal/v1/dossiers"
PULL_LIMIT = 100  # the portal's largest page
_PROVINCE = re.compile(r"[A-Z]\d{2}")
# The portal requires a reason with these statuses; a withdrawal may come without one.
_DEFAULT_REASON = {
    Status.REFUSED: "Từ chối tiếp nhận",
    Status.SUPPLEMENT_REQUESTED: "Yêu cầu bổ sung hồ sơ",
    Status.WITHDRAWN: "Công dân rút hồ sơ",
    Status.STOPPED: "Dừng xử lý",
}


class Stopping(asyncio.CancelledError):
    """The service stops while the portal is down: leave the event uncommitted (it is
    delivered again at the next start), as a cancelled task would."""


class PortalLink:
    def __init__(
        self,
        app: DossiersApp,
        client_factory: Callable[[], PublicServicePortalClient],
        agencies: AgencyDirectory,
        *,
        province: str,
        push_url: str,
        secret: str,
        subscribe: bool,
        poll_seconds: float,
        max_wait_seconds: float = 30.0,
    ) -> None:
        self.app = app
        self._factory = client_factory
        self._client: PublicServicePortalClient | None = None
        self.agencies = agencies
        self.province = province
        self.push_url = push_url
        self.secret = secret
        self.subscribe = subscribe
        self.poll_seconds = poll_seconds
        self.max_wait_seconds = max_wait_seconds
        self.stop = asyncio.Event()  # the runtime's, once `run` started
        self._subscribed: set[str] = set()
        self._malformed: set[str] = set()  # portal codes already logged as malformed
        self._reachable = True

    @property
    def client(self) -> PublicServicePortalClient:
        if self._client is None:  # made inside the service's event loop
            self._client = self._factory()
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _up(self) -> None:
        if not self._reachable:
            log.info("national public service portal reachable again")
        self._reachable = True

    def _down(self, error: ConnectorError) -> None:
        if self._reachable:
            log.warning("national public service portal unavailable, retrying (%s)", error)
        self._reachable = False

    async def _pause(self, seconds: float) -> None:
        """Sleep `seconds` (±20 %), or raise Stopping as soon as the service stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds * random.uniform(0.8, 1.2))
        if self.stop.is_set():
            raise Stopping

    # --- intake ------------------------------------------------------------------------------

    def take_in(self, data: object) -> tuple[Dossier, bool]:
        """A portal dossier (its JSON) taken in by the intake rules, and whether it is new;
        MalformedDossier or the rules' InvalidField when it cannot be. Idempotent by the
        portal's code."""
        try:
            dossier, new = self.app.take_in_online(submission_from_portal(data))
        except NotEligible as e:
            # A dissolved or suspended enterprise: the rules refuse it, as they refuse a bad
            # paper (a DomainError would mean "later", and the portal would push forever).
            raise InvalidField("applicant.organization_code", e.message) from None
        if new:
            log.info(
                "online dossier %s taken in as %s for %s",
                dossier.portal_code,
                dossier.receipt_code,
                dossier.agency_code,
            )
        return dossier, new

    def provinces(self) -> list[str]:
        """The province codes at the portal: the setting, or those of the agency tree."""
        if self.province:
            return [self.province]
        codes: list[str] = list(getattr(self.agencies, "codes", list)())
        found = {c.rsplit(".", 1)[-1] for c in codes}
        return sorted(p for p in found if _PROVINCE.fullmatch(p))

    async def run(self, stop: asyncio.Event) -> None:
        """Register the push subscription, then pull the handover every `poll_seconds`."""
        self.stop = stop
        wait = self.poll_seconds
        try:
            while not stop.is_set():
                try:
                    for province in self.provinces():
                        if self.subscribe and province not in self._subscribed:
                            await self.client.subscribe(province, self.push_url, self.secret)
                            self._subscribed.add(province)
                            log.info("portal pushes for %s go to %s", province, self.push_url)
                        await self.catch_up(province)
                    self._up()
                    wait = self.poll_seconds
                except Unavailable as e:
                    self._down(e)
                    wait = min(self.max_wait_seconds, max(wait, self.poll_seconds) * 2)
                except ConnectorError as e:
                    log.error("catching up with the national public service portal: %s", e)
                    wait = self.max_wait_seconds
                except Exception:  # the database, say: the next round tries again
                    log.exception("catching up with the national public service portal failed")
                    wait = self.max_wait_seconds
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
        finally:
            await self.aclose()

    async def catch_up(self, province: str) -> int:
        """Take in the online dossiers the portal still holds for `province`; how many. An
        empty pull leaves no span and no log line."""
        taken = 0
        while True:
            with unsampled():
                pending = await self.client.pull_handover(province_code=province, limit=PULL_LIMIT)
            pending = [p for p in pending if p.portal_code not in self._malformed]
            for found in pending:
                with _tracer.start_as_current_span(
                    "portal handover",
                    context=new_trace(),
                    attributes={"lgsp.portal.code": str(found.portal_code)},
                ):
                    taken += await self._take_over(found)
            if len(pending) < PULL_LIMIT:
                return taken

    async def _take_over(self, found: PortalDossier) -> int:
        code = str(found.portal_code)
        data = {
            "portal_code": code,
            "agency_code": found.agency_code,
            "procedure_code": found.procedure_code,
            "applicant": found.applicant,
            "papers": list(found.papers),
        }
        try:
            dossier, _ = await asyncio.to_thread(self.take_in, data)
        except MalformedDossier as e:
            self._malformed.add(code)
            log.error("online dossier %s from the portal is malformed, left there: %s", code, e)
            return 0
        except InvalidField as e:
            # The same refusal the push would answer: the portal shows it to the citizen.
            await self.client.refuse_handover(code, f"{refusal_message(e)} ({e.reason})")
            log.info("online dossier %s refused at the catch-up: %s", code, e)
            return 0
        except DomainError as e:  # e.g. the day's receipt numbers ran out: next round
            log.warning("online dossier %s not taken in yet: %s", code, e)
            return 0
        # Only after the commit: a crash before this pulls it again and gets the same code.
        await self.client.ack_handover(code, dossier.receipt_code)
        return 1

    # --- status sync --------------------------------------------------------------------------

    def sync_subscription(self) -> Subscription:
        return Subscription(
            SYNC_GROUP, [topic_for("dossiers")], {events_pb2.DossierStatusChanged: self._sync_one}
        )

    async def _sync_one(self, event: ReceivedEvent, uow: UnitOfWork) -> None:
        m = event.payload
        assert isinstance(m, events_pb2.DossierStatusChanged)
        status = Status(m.to_status)
        when = m.change_time.ToDatetime(tzinfo=UTC) if m.HasField("change_time") else event.time
        reason = m.reason.strip() or _DEFAULT_REASON.get(status)
        wait = 0.5
        while True:
            try:
                portal, duplicate = await self.client.push_status(
                    m.receipt_code,
                    int(status),
                    when,
                    agency_code=m.agency_code,
                    procedure_code=m.procedure_code,
                    reason=reason,
                    portal_code=m.portal_code or None,
                )
                self._up()
                break
            except Unavailable as e:  # down, slow, 5xx, 429 past its deadline: wait
                self._down(e)
                await self._pause(wait)
                wait = min(self.max_wait_seconds, wait * 2)
            except ConnectorError as e:
                log.error(
                    "national public service portal refused status %d of %s (%s %s): %s;"
                    " dead-lettered, replay it with `lgsp dlq` once fixed",
                    status,
                    m.receipt_code,
                    e.status,
                    e.code,
                    e.message,
                )
                raise PermanentError(f"portal refused {m.receipt_code} status {status}") from e
        await asyncio.to_thread(
            self._record_synced, uow, m, when, duplicate, portal.portal_code or ""
        )

    @staticmethod
    def _record_synced(
        uow: UnitOfWork,
        m: events_pb2.DossierStatusChanged,
        when: datetime,
        duplicate: bool,
        portal_code: str,
    ) -> None:
        DossierRepository(uow.session).mark_portal_synced(m.dossier_id, Status(m.to_status), when)
        uow.emit(
            events_pb2.DossierPortalSynced(
                dossier_id=m.dossier_id,
                receipt_code=m.receipt_code,
                status=m.to_status,
                portal_reference=portal_code or m.receipt_code,
                change_time=ts(when),
                duplicate=duplicate,
            ),
            subject=m.receipt_code,
        )


def portal_from_settings(
    settings: Settings,
    app: DossiersApp,
    agencies: AgencyDirectory,
    http_port: int,
    options: ClientOptions | None = None,
) -> PortalLink:
    section = settings.dossiers
    host = settings.platform.host
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return PortalLink(
        app,
        lambda: PublicServicePortalClient.from_settings(settings, options=options),
        agencies,
        province=section.portal_province,
        push_url=section.portal_push_url
        or f"{settings.http_scheme}://{host}:{http_port}{PUSH_PATH}",
        secret=section.portal_push_secret or secrets.token_urlsafe(32),
        subscribe=section.portal_subscribe,
        poll_seconds=section.portal_poll_seconds,
    )
