"""The national payment platform as the fee use cases see it: lgsp.connectors.PaymentClient
with its errors turned into the domain's (the platform down → PaymentPlatformUnavailable)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime

from lgsp.connectors import (
    Conflict,
    ConnectorError,
    InvalidRequest,
    NotFound,
    Payment,
    PaymentClient,
    Unavailable,
)
from services.dossiers.domain.dossier import Dossier
from services.dossiers.domain.errors import InvalidField, PaymentPlatformUnavailable
from services.dossiers.domain.fees import OnlinePayment, fee_request_key

log = logging.getLogger("dossiers.payments")


def online_payment(p: Payment) -> OnlinePayment:
    assert p.paid_at is not None
    return OnlinePayment(
        p.payment_id,
        p.receipt_code,
        p.amount_vnd,
        p.transaction_ref or "",
        datetime.fromisoformat(p.paid_at),
    )


def _unavailable(e: ConnectorError) -> PaymentPlatformUnavailable:
    if not isinstance(e, Unavailable):  # 401/403: a configuration problem, said loudly
        log.error("payment platform refused the call", extra={"error": str(e)})
    return PaymentPlatformUnavailable(
        f"the national payment platform cannot be reached ({e.operation}); nothing was "
        "stored, try again"
    )


class PaymentPlatform:
    def __init__(self, client: PaymentClient, callback_url: str) -> None:
        self.client = client
        self.callback_url = callback_url

    async def request(self, d: Dossier, fee_vnd: int, description: str) -> Payment:
        """The fee's payment at the platform, the same one however often this is retried."""
        try:
            return await self.client.create_payment(
                fee_vnd,
                d.receipt_code,
                d.applicant.organization_name or d.applicant.full_name,
                payer_id_number=d.applicant.identity_number or None,
                description=description.strip() or f"Phí, lệ phí hồ sơ {d.receipt_code}",
                idempotency_key=fee_request_key(d, fee_vnd, description),
                callback_url=self.callback_url,
            )
        except InvalidRequest as e:
            field = {"amount_vnd": "fee_vnd"}.get(e.field or "", e.field or "fee_vnd")
            raise InvalidField(field, e.message) from None
        except ConnectorError as e:
            raise _unavailable(e) from None

    async def void(self, payment_id: str) -> Payment | None:
        """Cancel a payment not made yet; the payment if the payer paid it meanwhile."""
        try:
            await self.client.cancel_payment(payment_id)
            return None
        except Conflict as e:
            if e.code != "PAYMENT_ALREADY_PAID":
                raise _unavailable(e) from None
        except NotFound:
            return None  # never made at the platform: nothing to pay there
        except ConnectorError as e:
            raise _unavailable(e) from None
        return await self.get(payment_id)

    async def get(self, payment_id: str) -> Payment | None:
        try:
            return await self.client.get_payment(payment_id)
        except NotFound:
            return None
        except ConnectorError as e:
            raise _unavailable(e) from None

    async def confirm(self, payment_id: str) -> None:
        try:
            await self.client.confirm_payment(payment_id)
        except ConnectorError as e:
            raise _unavailable(e) from None

    async def paid_between(self, start: datetime, end: datetime) -> AsyncIterator[Payment]:
        try:
            async for p in self.client.paid_between(start, end):
                yield p
        except ConnectorError as e:
            raise _unavailable(e) from None
