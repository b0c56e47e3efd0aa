"""Client of the national payment platform: request a fee payment, follow it, cancel it,
list a day's paid transactions, confirm them once reconciled; and the signature of the
platform's payment notices (callbacks), which the mock signs and the province verifies.

Creating is safe to retry: every request carries an Idempotency-Key (the caller's, or one
made per call), and the platform answers a repeat with the first payment.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lgsp.connectors.base import NationalClient
from lgsp.connectors.errors import InvalidRequest

# The shared secret of the mock's notices by default (both sides), so `make run` works; a real
# platform issues one per connected service provider.
DEFAULT_CALLBACK_SECRET = "lgsp-dev-callback-secret"
SIGNATURE_HEADER = "X-Payment-Signature"
MAX_NOTICE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Payment:
    payment_id: str
    status: str  # PENDING, PAID, CONFIRMED, EXPIRED, CANCELLED
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
        callback_url: str | None = None,
    ) -> Payment:
        """Pass a stable `idempotency_key` (e.g. receipt code + fee step) so that a retry
        after a crash finds the same payment rather than creating a second one. With
        `callback_url` the platform POSTs a signed notice there once the payment is made."""
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
        body: dict[str, Any] = {
            "amount_vnd": amount_vnd,
            "receipt_code": receipt_code,
            "payer": payer,
            "description": description,
        }
        if callback_url:
            body["callback_url"] = callback_url
        reply = await self.http.call(
            "create_payment",
            "POST",
            "/api/v1/payments",
            json_body=body,
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

    async def cancel_payment(self, payment_id: str) -> Payment:
        """Void a payment not made yet (idempotent); Conflict `PAYMENT_ALREADY_PAID` once the
        payer has paid it."""
        reply = await self.http.call(
            "cancel_payment", "POST", "/api/v1/payments/{id}/cancel", path={"id": payment_id}
        )
        return _payment(reply.body)

    async def paid_between(self, paid_from: datetime, paid_to: datetime) -> AsyncIterator[Payment]:
        """Every payment paid in [paid_from, paid_to), oldest first, page by page."""
        token = ""
        while True:
            params: dict[str, str | int] = {
                "paid_from": paid_from.isoformat(),
                "paid_to": paid_to.isoformat(),
                "limit": 500,
            }
            if token:
                params["page_token"] = token
            reply = await self.http.call("list_payments", "GET", "/api/v1/payments", params=params)
            for item in reply.body["payments"]:
                yield _payment(item)
            token = reply.body.get("next_page_token") or ""
            if not token:
                return


# --- payment notices (callbacks) --------------------------------------------------------


@dataclass(frozen=True)
class PaymentNotice:
    """What the platform tells a service provider when a payment is made."""

    notification_id: str
    payment_id: str
    status: str
    amount_vnd: int
    receipt_code: str
    transaction_ref: str
    paid_at: datetime
    timestamp: int  # when this delivery was signed, Unix seconds
    nonce: str


class NoticeRejected(Exception):
    """A notice that must not be believed: `code` is BAD_SIGNATURE, STALE or MALFORMED."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


def sign_notice(body: bytes, secret: str) -> str:
    """The signature header's value: HMAC-SHA256 of the exact body bytes, hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_notice(
    body: bytes, signature: str, secret: str, *, now: float, max_age_s: float
) -> PaymentNotice:
    """The notice in `body` if its signature is right and it was signed within `max_age_s`
    of `now` (either way: a clock ahead is as suspect as one behind); NoticeRejected else.
    The signature is checked before the body is parsed."""
    if len(body) > MAX_NOTICE_BYTES:
        raise NoticeRejected("MALFORMED", "notice too large")
    if not hmac.compare_digest(sign_notice(body, secret), signature.strip()):
        raise NoticeRejected("BAD_SIGNATURE", "signature does not match the body")
    try:
        data = json.loads(body)
        p = data["payment"]
        notice = PaymentNotice(
            notification_id=str(data["notification_id"]),
            payment_id=str(p["payment_id"]),
            status=str(p["status"]),
            amount_vnd=int(p["amount_vnd"]),
            receipt_code=str(p["receipt_code"]),
            transaction_ref=str(p.get("transaction_ref") or ""),
            paid_at=datetime.fromisoformat(p["paid_at"]),
            timestamp=int(data["timestamp"]),
            nonce=str(data["nonce"]),
        )
    except (ValueError, KeyError, TypeError) as e:
        raise NoticeRejected("MALFORMED", f"not a payment notice: {e}") from None
    if notice.paid_at.tzinfo is None:
        raise NoticeRejected("MALFORMED", "paid_at has no time zone")
    if abs(now - notice.timestamp) > max_age_s:
        raise NoticeRejected("STALE", f"signed {int(now - notice.timestamp)} s from now")
    return notice
