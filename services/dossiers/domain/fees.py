"""Fees paid online through the national payment platform: what a payment notice is, the
idempotency key of a fee request, and what becomes of a notice (the dossier moves on, or the
notice is kept for reconciliation). Storage and the platform's client are elsewhere."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.dossiers.domain.dossier import Dossier
from services.dossiers.domain.status import Status


@dataclass(frozen=True)
class OnlinePayment:
    """A payment the platform says was made (its notice, or its listing)."""

    payment_id: str
    receipt_code: str
    amount_vnd: int
    transaction_ref: str
    paid_at: datetime


class Outcome(StrEnum):
    RECORDED = "recorded"  # the dossier's fee is paid, the clock resumed
    DUPLICATE = "duplicate"  # this payment was taken in before: nothing recorded again
    NOT_WAITING = "not_waiting"  # withdrawn, stopped or paid at the desk: to refund
    MISMATCH = "mismatch"  # amount or receipt code differ from the dossier's
    UNKNOWN = "unknown"  # no dossier has this payment


# Outcomes a person must look at (refund, investigate); reconciliation reports them.
UNRESOLVED = (Outcome.NOT_WAITING, Outcome.MISMATCH, Outcome.UNKNOWN)


def fee_request_key(dossier: Dossier, fee_vnd: int, description: str) -> str:
    """The platform's Idempotency-Key of a fee request: the dossier and the version it is
    requested from (one fee step), and what is asked. A retry of the same request after a
    crash or a lost answer finds the payment made the first time; a fee asked again later
    (another version) or differently (another amount) is another payment."""
    what = hashlib.sha256(f"{fee_vnd}\n{description.strip()}".encode()).hexdigest()[:16]
    return f"lgsp-dossiers:{dossier.id}:v{dossier.version}:{what}"


def judge(dossier: Dossier | None, paid: OnlinePayment) -> tuple[Outcome, str]:
    """What a payment notice does to the dossier it names (a first notice, not a replay)."""
    if dossier is None:
        return Outcome.UNKNOWN, "no dossier has this payment"
    if paid.receipt_code != dossier.receipt_code:
        return Outcome.MISMATCH, f"receipt code {paid.receipt_code} is not the dossier's"
    if paid.amount_vnd != dossier.fee_vnd:
        return Outcome.MISMATCH, f"paid {paid.amount_vnd} đồng, the fee is {dossier.fee_vnd}"
    if not dossier.online_payment_pending:
        why = "fee already paid" if dossier.fee_paid else f"status {dossier.status}"
        if dossier.status in (Status.WITHDRAWN, Status.STOPPED, Status.REFUSED):
            why = f"dossier {dossier.status.name.lower()}"
        return Outcome.NOT_WAITING, f"{why}: refund the applicant"
    return Outcome.RECORDED, ""
