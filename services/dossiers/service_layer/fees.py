"""Fees: requested through the national payment platform (or at the desk), paid online (the
platform's notice, or reconciliation) or at the desk, each payment recorded once.

The order of the remote call and the local commit, for RequestFee: every check first (a dry
run of the step), then the payment at the platform, then the dossier's commit with the
payment's id and link. The platform is idempotent by a key made of the dossier, the version
the fee is requested from and the request (domain.fees.fee_request_key), so:
- platform down → UNAVAILABLE, nothing stored here (nothing was made there either);
- the commit fails or the process dies after the platform answered → the dossier is
  unchanged, the retry (same etag) finds the same payment at the platform: never two;
- the dossier changed in between → ABORTED; the payment made stays PENDING at the platform
  with a link nobody was shown, and expires there (24 h).
Committing first and calling the platform after would leave a dossier waiting for a fee with
no way to pay it whenever the platform is down.

At the desk, with an online payment pending: the payment is voided at the platform first and
the cash recorded after. If the applicant already paid online, the desk is refused
(PaidOnline) and the online payment recorded instead, so a fee is never taken twice; if the
platform cannot say, UNAVAILABLE (taking cash then could charge twice).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from lgsp.auth import Principal
from lgsp.db import UnitOfWork
from services.dossiers.adapters.payment_platform import PaymentPlatform, online_payment
from services.dossiers.adapters.payment_receipts import PaymentReceipts, Receipt
from services.dossiers.adapters.proto import fee_paid
from services.dossiers.adapters.repository import DossierRepository
from services.dossiers.domain.dossier import Dossier
from services.dossiers.domain.errors import PaidOnline, StaleEtag
from services.dossiers.domain.fees import UNRESOLVED, OnlinePayment, Outcome, judge
from services.dossiers.service_layer.base import DESK, SPECIALIST, AppBase

log = logging.getLogger("dossiers.payments")


class FeeUseCases(AppBase):
    # Set by bootstrap; None (the CLI's count, some tests): fees are paid at the desk only.
    payments: PaymentPlatform | None = None

    def use_payment_platform(self, platform: PaymentPlatform) -> None:
        self.payments = platform

    async def request_fee(
        self,
        dossier_id: str,
        etag: str,
        fee_vnd: int,
        description: str,
        principal: Principal,
        *,
        pay_at_counter: bool = False,
    ) -> Dossier:
        """→ FEE_REQUESTED (6): the desk or the specialist; the clock stops until paid. Unless
        paid at the counter, the payment is requested at the platform (order: module doc)."""
        roles = (*DESK, SPECIALIST)
        if pay_at_counter or self.payments is None:
            return await asyncio.to_thread(
                self._step, dossier_id, etag, principal, roles,
                lambda d, now, who: d.request_fee(fee_vnd, description, now=now, actor=who),
            )  # fmt: skip
        d = await asyncio.to_thread(
            self._step, dossier_id, etag, principal, roles,
            lambda d, now, who: d.request_fee(fee_vnd, description, now=now, actor=who),
            dry_run=True,
        )  # fmt: skip
        payment = await self.payments.request(d, fee_vnd, description)
        return await asyncio.to_thread(
            self._step, d.id, d.etag, principal, roles,
            lambda d, now, who: d.request_fee(
                fee_vnd, description, now=now, actor=who,
                payment_id=payment.payment_id, payment_url=payment.pay_url),
        )  # fmt: skip

    async def record_payment(
        self, dossier_id: str, etag: str, amount_vnd: int, reference: str, principal: Principal
    ) -> Dossier:
        """FEE_REQUESTED → IN_PROGRESS (4) at the desk; the clock resumes, the due date moves
        by the working days it waited. A payment pending online is voided first."""

        def desk(d: Dossier, now: datetime, who: str, uow: UnitOfWork) -> None:
            d.record_payment(amount_vnd, reference, rule=self.rule, now=now, actor=who)
            uow.emit(fee_paid(d, amount_vnd, reference.strip(), now, who), subject=d.receipt_code)

        d = await asyncio.to_thread(
            self._step, dossier_id, etag, principal, DESK, desk, with_uow=True, dry_run=True
        )
        if d.online_payment_pending and self.payments is not None:
            paid = await self.payments.void(d.payment_id)
            if paid is not None and paid.paid:
                await asyncio.to_thread(self.take_payment, online_payment(paid), "desk")
                raise PaidOnline(
                    f"the fee of {d.receipt_code} was paid online (transaction "
                    f"{paid.transaction_ref}) and is recorded: take no payment at the desk"
                )
        return await asyncio.to_thread(
            self._step, d.id, d.etag, principal, DESK, desk, with_uow=True
        )

    def take_payment(self, paid: OnlinePayment, source: str) -> Outcome:
        """Take in the platform's word that `paid` was made (its notice, reconciliation, or the
        desk finding it paid): the dossier's fee recorded in one unit of work with its events,
        or the notice kept for reconciliation; DUPLICATE, and nothing done, the second time.
        Two at once: one records, the other fails on the dossier's version or the receipt's
        key, rolls back, and on its retry finds the first."""
        try:
            return self._take_payment(paid, source)
        except (StaleEtag, IntegrityError):
            return self._take_payment(paid, source)

    def _take_payment(self, paid: OnlinePayment, source: str) -> Outcome:
        now = self.clock()
        with self.uow() as uow:
            receipts = PaymentReceipts(uow.session)
            if receipts.get(paid.payment_id) is not None:
                return Outcome.DUPLICATE
            repo = DossierRepository(uow.session)
            d = repo.by_payment_id(paid.payment_id)
            outcome, detail = judge(d, paid)
            if d is not None and outcome is Outcome.RECORDED:
                version = d.version
                before = dataclasses.replace(d, new_history=[])
                d.record_online_payment(
                    paid.payment_id, paid.amount_vnd, paid.transaction_ref, paid.paid_at,
                    rule=self.rule, now=now,
                )  # fmt: skip
                entries = list(d.new_history)
                repo.save(d, version)
                self._record_figures(uow, before, d)
                uow.emit(
                    fee_paid(d, paid.amount_vnd, paid.transaction_ref, paid.paid_at, ""),
                    subject=d.receipt_code,
                )
                self._emit_changes(uow, d, entries)
            receipts.add(
                paid,
                dossier_id=d.id if d else None,
                source=source,
                outcome=outcome,
                detail=detail,
                now=now,
            )
            uow.commit()
        self.after_commit()
        fields = {
            "payment_id": paid.payment_id,
            "receipt_code": paid.receipt_code,
            "amount_vnd": paid.amount_vnd,
            "source": source,
            "outcome": str(outcome),
        }
        if outcome in UNRESOLVED:
            log.warning(f"online payment kept for reconciliation: {detail}", extra=fields)
        else:
            log.info("online payment recorded", extra=fields)
        return outcome

    def payment_receipt(self, payment_id: str) -> Receipt | None:
        with self.uow() as uow:
            return PaymentReceipts(uow.session).get(payment_id)

    def payment_receipts_between(self, start: datetime, end: datetime) -> list[Receipt]:
        with self.uow() as uow:
            return PaymentReceipts(uow.session).paid_between(start, end)

    def payment_confirmed(self, payment_id: str) -> None:
        with self.uow() as uow:
            PaymentReceipts(uow.session).confirmed(payment_id, self.clock())
            uow.commit()
