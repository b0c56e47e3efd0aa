"""The payment notices taken in (table payment_receipts), inside a unit of work's session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.dossiers.adapters.tables import payment_receipts
from services.dossiers.domain.fees import OnlinePayment, Outcome


@dataclass(frozen=True)
class Receipt:
    payment_id: str
    dossier_id: str | None
    receipt_code: str
    amount_vnd: int
    transaction_ref: str
    paid_at: datetime
    source: str
    outcome: Outcome
    detail: str
    confirmed_at: datetime | None


def _utc(t: datetime | None) -> datetime | None:
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _receipt(row: sa.Row[tuple[object, ...]]) -> Receipt:
    v = row._asdict()
    return Receipt(
        payment_id=v["payment_id"],
        dossier_id=v["dossier_id"],
        receipt_code=v["receipt_code"],
        amount_vnd=v["amount_vnd"],
        transaction_ref=v["transaction_ref"],
        paid_at=_utc(v["paid_at"]) or datetime.now(UTC),
        source=v["source"],
        outcome=Outcome(v["outcome"]),
        detail=v["detail"],
        confirmed_at=_utc(v["confirmed_at"]),
    )


class PaymentReceipts:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, payment_id: str) -> Receipt | None:
        row = self.session.execute(
            sa.select(payment_receipts).where(payment_receipts.c.payment_id == payment_id)
        ).first()
        return None if row is None else _receipt(row)

    def add(
        self,
        paid: OnlinePayment,
        *,
        dossier_id: str | None,
        source: str,
        outcome: Outcome,
        detail: str,
        now: datetime,
    ) -> None:
        """The primary key is the payment id: a second insert for one payment fails, so two
        notices taken in at the same moment cannot both be recorded."""
        self.session.execute(
            sa.insert(payment_receipts).values(
                payment_id=paid.payment_id,
                dossier_id=dossier_id,
                receipt_code=paid.receipt_code[:60],
                amount_vnd=paid.amount_vnd,
                transaction_ref=paid.transaction_ref[:64],
                paid_at=paid.paid_at,
                received_at=now,
                source=source,
                outcome=str(outcome),
                detail=detail[:500],
            )
        )

    def paid_between(self, start: datetime, end: datetime) -> list[Receipt]:
        rows = self.session.execute(
            sa.select(payment_receipts)
            .where(payment_receipts.c.paid_at >= start, payment_receipts.c.paid_at < end)
            .order_by(payment_receipts.c.paid_at)
        )
        return [_receipt(r) for r in rows]

    def confirmed(self, payment_id: str, now: datetime) -> None:
        self.session.execute(
            sa.update(payment_receipts)
            .where(payment_receipts.c.payment_id == payment_id)
            .values(confirmed_at=now)
        )
