"""Identity's account events → mailboxes (consumer group "mail-users" on lgsp.identity.v1).

Each event is handled in the processor's unit of work, so the mailbox and the processed
event id commit together: a redelivered UserCreated finds the mailbox and changes nothing.
A user of an agency the tree does not know yet waits for the tree's first load (its mail
domain decides the address), so mail never hands out an address on the wrong domain.
"""

from __future__ import annotations

import asyncio
from typing import Any

from lgsp.agencies import IDENTITY_TOPIC
from lgsp.api.identity.v1 import events_pb2
from lgsp.inbox import ReceivedEvent
from lgsp.plugins import Subscription
from services.mail.service_layer.mail import MailApp


def user_subscription(app: MailApp, group: str = "mail-users") -> Subscription:
    async def tree_ready(agency_code: str) -> None:
        load = getattr(app.agencies, "load", None)
        if agency_code and app.agencies.get(agency_code) is None and load is not None:
            await load()  # raises while identity is unreachable: the event is retried

    async def user(event: ReceivedEvent, uow: Any) -> None:
        payload = event.payload
        assert isinstance(payload, events_pb2.UserCreated | events_pb2.UserUpdated)
        await tree_ready(payload.user.agency_code)
        await asyncio.to_thread(app.on_user, uow, payload.user, payload.actor_id)
        await asyncio.to_thread(app.sync_clerk, uow, payload.user.id)  # vanthu.py

    def disabled(event: ReceivedEvent, uow: Any) -> None:
        assert isinstance(event.payload, events_pb2.UserDisabled)
        app.on_user_active(uow, event.payload.user_id, False)
        app.sync_clerk(uow, event.payload.user_id)

    def enabled(event: ReceivedEvent, uow: Any) -> None:
        assert isinstance(event.payload, events_pb2.UserEnabled)
        app.on_user_active(uow, event.payload.user_id, True)
        app.sync_clerk(uow, event.payload.user_id)

    def granted(event: ReceivedEvent, uow: Any) -> None:
        payload = event.payload
        assert isinstance(payload, events_pb2.RoleGranted)
        app.on_role_change(
            uow, payload.user_id, payload.grant.role, payload.grant.agency_code, True
        )

    def revoked(event: ReceivedEvent, uow: Any) -> None:
        payload = event.payload
        assert isinstance(payload, events_pb2.RoleRevoked)
        app.on_role_change(uow, payload.user_id, payload.role, payload.agency_code, False)

    return Subscription(
        group,
        [IDENTITY_TOPIC],
        {
            events_pb2.UserCreated: user,
            events_pb2.UserUpdated: user,
            events_pb2.UserDisabled: disabled,
            events_pb2.UserEnabled: enabled,
            events_pb2.RoleGranted: granted,
            events_pb2.RoleRevoked: revoked,
        },
        max_attempts=10,
    )
