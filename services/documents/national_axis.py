"""The exchange across the province's border: the national document axis (trục liên thông
văn bản quốc gia), through `lgsp.connectors.document_axis`.

Inside the province documents travel over the platform bus (`BusTransport`). A message for an
agency the province's directory does not hold goes to the national axis instead:

- `AxisTransport.send` routes by recipient. A message for outside the province is written to
  the outbox on `AXIS_TOPIC` in the caller's unit of work, so it commits with the step that
  sends it. `AxisExchange.relay` consumes that topic and posts the package or status to the
  axis. While the axis is unavailable it waits and tries again (the partition holds; nothing
  is dropped or dead-lettered for an outage). A refusal that retrying cannot change (bad
  edXML, unknown agency, conflict) is final: a refused package marks its recipient FAILED on
  the document with the axis's reason, so the clerk sees it and can send again; anything
  else refused goes to the dead-letter topic. The axis recognises a resent package by
  (sender, DocumentId) and a status by its bytes, so a relay that resends after a crash
  delivers nothing twice.
- `AxisExchange.run` polls the mailboxes of the province's agencies, all of them in one call
  a round (the axis's multi-mailbox poll); an empty round logs nothing and leaves no span.
  Each package from
  outside becomes an ExchangeMessage on the province's exchange topic (the same path a
  package from inside takes, so registration, signature checks and statuses back are one
  code path), recorded as processed in the same transaction, and is acknowledged at the axis
  only after that commit: a crash in between polls it again and the processed record drops
  the repeat. Packages the axis holds from senders inside the province are acknowledged and
  dropped: the bus carried them already (the axis delivers to every To of a package, local
  recipients included).

A mailbox the axis does not know (a new agency) is opened when a poll reports it, and before
a package naming it is sent (idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine

from lgsp.api.documents.v1 import events_pb2
from lgsp.config import Settings
from lgsp.connectors.document_axis import MAX_MAILBOXES, AxisPackage, DocumentAxisClient
from lgsp.connectors.errors import ConnectorError, Unavailable
from lgsp.db import UnitOfWork
from lgsp.inbox import PermanentError, ReceivedEvent, is_processed, record_processed
from lgsp.plugins import Subscription
from lgsp.telemetry import new_trace, tracer, unsampled
from services.documents import edxml
from services.documents.service_layer.ports import AgencyDirectory
from services.documents.transport import (
    BusTransport,
    Delivery,
    OnDelivery,
)

log = logging.getLogger("services.documents.axis")

AXIS_TOPIC = "lgsp.exchange.axis.v1"
RELAY_GROUP = "documents-axis-relay"
_tracer = tracer("services.documents.national_axis")
INBOX_CONSUMER = "documents-axis-inbox"  # processed_events rows of imported axis packages
POLL_LIMIT = 100  # the axis's maximum page


class AxisTransport:
    """Inside the province over the bus; outside it through the outbox to the axis relay."""

    outside_province = True
    # The axis's list of outside agencies (OutsideDirectory), set by bootstrap; None: unchecked.
    outside: Any = None

    def __init__(self, agencies: AgencyDirectory, bus: BusTransport | None = None) -> None:
        self.agencies = agencies
        self.bus = bus or BusTransport()
        self.outbound = BusTransport(AXIS_TOPIC)  # the relay's queue, in the same outbox

    def is_local(self, agency_code: str) -> bool:
        return self.agencies.get(agency_code) is not None

    def send(self, uow: UnitOfWork, delivery: Delivery) -> None:
        (self.bus if self.is_local(delivery.to_agency_code) else self.outbound).send(uow, delivery)

    def subscription(self, group: str, on_delivery: OnDelivery) -> Subscription:
        # Everything that arrives, from inside or (imported by AxisExchange) from outside,
        # comes over the province's exchange topic.
        return self.bus.subscription(group, on_delivery)


class AxisExchange:
    """The relay to the axis and the poller of the province's mailboxes."""

    def __init__(
        self,
        client_factory: Callable[[], DocumentAxisClient],
        transport: AxisTransport,
        engine: Engine,
        *,
        poll_seconds: float = 5.0,
        max_wait_seconds: float = 30.0,
        idle_poll_seconds: float = 30.0,
    ) -> None:
        self._factory = client_factory
        self._client: DocumentAxisClient | None = None
        self.transport = transport
        self.engine = engine  # the documents database, where imported packages are recorded
        self.poll_seconds = poll_seconds
        self.max_wait_seconds = max_wait_seconds
        self.idle_poll_seconds = max(idle_poll_seconds, poll_seconds)
        self._active = False  # a package was sent since the last poll: answers may follow
        # Records a refused package on its document: (uow, sender, number, recipient, reason)
        # → False if there is no such document (the message is dead-lettered then).
        self.on_refused: Callable[[UnitOfWork, str, str, str, str], bool] | None = None
        self._opened: set[str] = set()  # mailboxes known to be open at the axis
        self._reachable = True  # for logging the outage once, and the recovery once

    @property
    def client(self) -> DocumentAxisClient:
        if self._client is None:  # made inside the service's event loop
            self._client = self._factory()
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _open_mailbox(self, code: str) -> None:
        if code in self._opened:
            return
        agency = self.transport.agencies.get(code)
        await self.client.register_agency(code, agency.name if agency else code)
        self._opened.add(code)

    def _up(self) -> None:
        if not self._reachable:
            log.info("national document axis reachable again")
        self._reachable = True

    def _down(self, error: ConnectorError, wait: float) -> None:
        if self._reachable:
            log.warning("national document axis unavailable, retrying (%s)", error)
        else:
            log.debug("national document axis still unavailable, next try in %.1fs", wait)
        self._reachable = False

    # --- outgoing ---------------------------------------------------------------------------

    def relay(self) -> Subscription:
        return Subscription(
            RELAY_GROUP, [AXIS_TOPIC], {events_pb2.ExchangeMessage: self._relay_one}
        )

    async def _relay_one(self, event: ReceivedEvent, uow: UnitOfWork) -> None:
        m = event.payload
        assert isinstance(m, events_pb2.ExchangeMessage)
        try:
            message = edxml.parse(m.edxml)
        except edxml.EdxmlError as e:
            raise PermanentError(f"edXML message {m.message_id} is malformed: {e}") from e
        wait = 0.5
        while True:
            try:
                unreached = await self._post(message, m.edxml)
                self._up()
                if m.to_agency_code in unreached and isinstance(message, edxml.Package):
                    # The axis took the package for the others; this recipient fails alone.
                    await self._refused(uow, m, message, "Không tìm thấy đơn vị nhận trên trục")
                return
            except ConnectorError as e:
                if isinstance(e, Unavailable) and e.retryable:
                    self._down(e, wait)
                    await asyncio.sleep(wait * random.uniform(0.8, 1.2))
                    wait = min(self.max_wait_seconds, wait * 2)
                    continue
                # Refused: retrying would get the same answer.
                log.error(
                    "national document axis refused message %s to %s: %s",
                    m.message_id,
                    m.to_agency_code,
                    e,
                )
                if isinstance(message, edxml.Package) and await self._refused(
                    uow, m, message, e.message
                ):
                    return
                raise PermanentError(f"axis refused {m.message_id}: {e}") from e

    async def _refused(
        self, uow: UnitOfWork, m: events_pb2.ExchangeMessage, message: edxml.Package, why: str
    ) -> bool:
        """Shown on the document's recipient line (FAILED); the clerk can send again."""
        if self.on_refused is None:
            return False
        reason = f"Trục liên thông văn bản quốc gia từ chối: {why}"
        sender, number = message.header.from_.organ_id, str(message.header.code)
        return await asyncio.to_thread(
            self.on_refused, uow, sender, number, m.to_agency_code, reason
        )

    async def _post(self, message: edxml.Package | edxml.Status, data: bytes) -> tuple[str, ...]:
        """Post to the axis; the recipients it could not reach."""
        if isinstance(message, edxml.Status):
            await self._open_mailbox(message.from_.organ_id)
            await self.client.send_status(data)
            return ()
        header = message.header
        # The axis delivers to every To and needs each mailbox open: ours are opened here.
        for code in [header.from_.organ_id, *(o.organ_id for o in header.to)]:
            if self.transport.is_local(code):
                await self._open_mailbox(code)
        sent = await self.client.send_package(data)
        self._active = True
        log.info(
            "edXML package %s sent to the national document axis as %s%s",
            header.document_id,
            sent.package_id,
            " (already there)" if sent.duplicate else "",
        )
        return sent.undeliverable

    # --- incoming ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Poll the province's mailboxes until stopped, one call a round for all of them
        (`poll_round`): each `poll_seconds` while packages come or go, less and less often (up
        to `idle_poll_seconds`) while none do, so an idle province costs next to nothing."""
        wait = self.poll_seconds
        try:
            while not stop.is_set():
                try:
                    found = await self.poll_round(stop)
                    self._up()
                    if found or self._active:  # a send during the round or the wait before it
                        wait = self.poll_seconds
                        self._active = False
                    else:
                        wait = min(self.idle_poll_seconds, max(wait, self.poll_seconds) * 2)
                except Unavailable as e:
                    self._down(e, wait)
                    wait = min(self.max_wait_seconds, max(wait, self.poll_seconds) * 2)
                except ConnectorError as e:  # e.g. a mailbox the axis refuses to open
                    log.error("polling the national document axis failed: %s", e)
                    wait = self.max_wait_seconds
                except Exception:  # the database, say: the next round tries again
                    log.exception("importing from the national document axis failed")
                    wait = self.max_wait_seconds
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
        finally:
            await self.aclose()

    async def poll_round(self, stop: asyncio.Event | None = None) -> int:
        """Import what waits in every mailbox of the province; the number imported. One
        multi-mailbox call per MAX_MAILBOXES agencies (one for a province), repeated only
        while full pages come back. A round that finds nothing writes no log line and leaves
        no span (every few seconds it would fill the log and the trace store); each package
        found is imported in a trace of its own."""
        codes = list(self.transport.agencies.codes())
        imported = 0
        for start in range(0, len(codes), MAX_MAILBOXES):
            imported += await self.poll_mailboxes(codes[start : start + MAX_MAILBOXES], stop)
        return imported

    async def poll_once(self, agency_code: str) -> int:
        """Import what waits in one mailbox (a round for one agency)."""
        return await self.poll_mailboxes([agency_code])

    async def poll_mailboxes(self, codes: list[str], stop: asyncio.Event | None = None) -> int:
        imported = 0
        while codes and not (stop is not None and stop.is_set()):
            with unsampled():
                batch = await self.client.poll_mailboxes(codes, POLL_LIMIT)
                for code in batch.unknown:  # new agencies (or an axis that lost them)
                    self._opened.discard(code)
                    await self._open_mailbox(code)
            for package in batch.packages:
                with _tracer.start_as_current_span(
                    "national axis package import",
                    context=new_trace(),
                    attributes={"lgsp.axis.package_id": package.package_id},
                ):
                    mailbox = package.agency_code
                    if not self.transport.is_local(package.sender):
                        if await asyncio.to_thread(self._import, mailbox, package):
                            imported += 1
                    # Only after the import committed: a crash before this polls it again.
                    await self.client.ack(mailbox, package.package_id)
            if len(batch.packages) < POLL_LIMIT:
                break
        return imported

    def _import(self, agency_code: str, package: AxisPackage) -> bool:
        """The package as an ExchangeMessage for `agency_code`, once; False if seen before."""
        # One package (one id) waits in the mailbox of each To; each agency's copy is its own.
        key = f"{package.package_id}@{agency_code}"
        if len(key) > 64:  # processed_events.event_id; an axis's ids need not be UUIDs
            key = hashlib.sha256(key.encode()).hexdigest()
        with UnitOfWork(self.engine, source="documents") as uow:
            if is_processed(uow.session, INBOX_CONSUMER, key):
                return False
            # A document keeps the sender's DocumentId: statuses sent back must name it.
            message_id = package.message_id or package.package_id
            self.transport.bus.send(
                uow, Delivery(message_id, package.sender, agency_code, package.body)
            )
            record_processed(uow.session, INBOX_CONSUMER, key, f"axis.{package.kind}")
            uow.commit()
        log.info(
            "%s %s from %s for %s imported from the national document axis",
            package.kind,
            package.package_id,
            package.sender,
            agency_code,
        )
        return True


def axis_from_settings(
    settings: Settings, agencies: AgencyDirectory, engine: Engine
) -> tuple[AxisTransport, AxisExchange]:
    transport = AxisTransport(agencies)
    exchange = AxisExchange(
        lambda: DocumentAxisClient.from_settings(settings),
        transport,
        engine,
        poll_seconds=settings.documents.axis_poll_seconds,
        idle_poll_seconds=settings.documents.axis_idle_poll_seconds,
    )
    return transport, exchange
