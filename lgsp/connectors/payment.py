"""Client of the national payment platform: request a fee payment, follow it, confirm it.

Creating is safe to retry: every request carries an Idempotency-Key (the caller's, or one
made per call), and the platform answers a repeat with the first payment.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from lgsp.connectors.base import NationalClient
from lgsp.connectors.errors import InvalidRequest


@dataclass(frozen=True)
class Payment:
    payment_id: str
    status: str  # PENDING, PAID, CONFIRMED, EXPIRED
    amount_vnd: int
    receipt_code: str
    pay_url: str
    created_at: str
    expires_at: str
    paid_at: str | None
    transaction_ref: str | None
    confirmed_at: str | None
    replayed: bool = False  # answered from an earlier request with the same key

    @property
    def paid(self) -> bool:
        return self.status in {"PAID", "CONFIRMED"}


def _payment(b: dict[str, Any], replayed: bool = False) -> Payment:
    return Payment(
        b["payment_id"],
        b["status"],
        b["amount_vnd"],
        b["receipt_code"],
        b["pay_url"],
        b["created_at"],
        b["expires_at"],
        b["paid_at"],
        b["transaction_ref"],
        b["confirmed_at"],
        replayed,
    )


class PaymentClient(NationalClient):
    system = "payment"

    async def create_payment(
        self,
        amount_vnd: int,
        receipt_code: str,
        payer_name: str,
        *,
        payer_id_number: str | None = None,
        description: str = "",
        idempotency_key: str | None = None,
    ) -> Payment:
        """Pass a stable `idempotency_key` (e.g. receipt code + fee step) so that a retry
        after a crash finds the same payment rather than creating a second one."""
        if isinstance(amount_vnd, bool) or not isinstance(amount_vnd, int) or amount_vnd <= 0:
            raise InvalidRequest(
                self.system,
                "create_payment",
                "amount_vnd must be a positive integer",
                field="amount_vnd",
                attempts=0,
            )
        payer = {"full_name": payer_name}
        if payer_id_number:
            payer["id_number"] = payer_id_number
        reply = await self.http.call(
            "create_payment",
            "POST",
            "/api/v1/payments",
            json_body={
                "amount_vnd": amount_vnd,
                "receipt_code": receipt_code,
                "payer": payer,
                "description": description,
            },
            headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())},
        )
        return _payment(reply.body, reply.headers.get("idempotent-replayed") == "true")

    async def get_payment(self, payment_id: str) -> Payment:
        reply = await self.http.call(
            "get_payment", "GET", "/api/v1/payments/{id}", path={"id": payment_id}
        )
        return _payment(reply.body)

    async def confirm_payment(self, payment_id: str) -> Payment:
        """Confirm a PAID payment as reconciled; Conflict while it is not paid."""
        reply = await self.http.call(
            "confirm_payment", "POST", "/api/v1/payments/{id}/confirm", path={"id": payment_id}
        )
        return _payment(reply.body)
