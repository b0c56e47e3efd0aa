"""How documents and status messages travel between agencies' documents systems.

`Transport.send(uow, delivery)` hands an edXML message to the exchange inside the caller's
unit of work, so the send and the message commit together (nothing is sent for a rolled-back
step, nothing lost after a commit). `Transport.subscription(group, on_delivery)` is the
receiving side: a platform Subscription whose handler gets each Delivery with a unit of work.

The first form, `BusTransport`, is the embedded one: one ExchangeMessage event per recipient on
the topic "lgsp.exchange.v1", keyed by the recipient's agency code, which the recipient's
documents service consumes. `services.documents.national_axis.AxisTransport` wraps it and
sends what is for agencies outside the province to the national document axis.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from lgsp.api.documents.v1 import events_pb2
from lgsp.app import Subscription
from lgsp.db import UnitOfWork
from lgsp.inbox import ReceivedEvent

EXCHANGE_TOPIC = "lgsp.exchange.v1"


@dataclass(frozen=True)
class Delivery:
    """One edXML message (package or status) from one agency to another."""

    message_id: str
    from_agency_code: str
    to_agency_code: str
    edxml: bytes


# Sync (runs in the consumer's worker thread) or async (awaited on the loop; it moves its
# database work to a thread itself).
OnDelivery = Callable[[Delivery, UnitOfWork], Awaitable[None] | None]


class Transport(Protocol):
    # Whether it carries messages to agencies outside the province's directory.
    outside_province: bool

    def send(self, uow: UnitOfWork, delivery: Delivery) -> None: ...

    def subscription(self, group: str, on_delivery: OnDelivery) -> Subscription: ...


class BusTransport:
    """The exchange over the platform bus (embedded log or Kafka), through the outbox."""

    outside_province = False

    def __init__(self, topic: str = EXCHANGE_TOPIC) -> None:
        self.topic = topic

    def send(self, uow: UnitOfWork, delivery: Delivery) -> None:
        uow.emit(
            events_pb2.ExchangeMessage(
                message_id=delivery.message_id,
                from_agency_code=delivery.from_agency_code,
                to_agency_code=delivery.to_agency_code,
                edxml=delivery.edxml,
            ),
            subject=delivery.to_agency_code,
            topic=self.topic,
        )

    def subscription(self, group: str, on_delivery: OnDelivery) -> Subscription:
        def delivery(event: ReceivedEvent) -> Delivery:
            m = event.payload
            assert isinstance(m, events_pb2.ExchangeMessage)
            return Delivery(m.message_id, m.from_agency_code, m.to_agency_code, m.edxml)

        def handle(event: ReceivedEvent, uow: UnitOfWork) -> None:
            on_delivery(delivery(event), uow)

        async def handle_async(event: ReceivedEvent, uow: UnitOfWork) -> None:
            result: Any = on_delivery(delivery(event), uow)
            await result

        chosen = handle_async if inspect.iscoroutinefunction(on_delivery) else handle
        return Subscription(group, [self.topic], {events_pb2.ExchangeMessage: chosen})
