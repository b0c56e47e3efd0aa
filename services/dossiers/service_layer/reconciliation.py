"""Reconciliation (đối soát) of online fees with the national payment platform, one day at a
time (a day in province time):

- paid at the platform, not taken in here (its notice was lost) → recorded now, as its
  notice would have been;
- taken in but not recordable (dossier withdrawn or stopped, amount or receipt code
  different, no such dossier) → reported: a person refunds or investigates;
- taken in here but unknown to the platform, or for another amount → reported;
- matched → confirmed at the platform (PAID → CONFIRMED), once.

Run by `lgsp dossiers reconcile [--date]` and, for today and yesterday, by the service every
`[dossiers] payment_reconcile_interval_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from lgsp.workdays import PROVINCE_TZ
from services.dossiers.adapters.payment_platform import PaymentPlatform, online_payment
from services.dossiers.domain.errors import PaymentPlatformUnavailable
from services.dossiers.domain.fees import UNRESOLVED, Outcome

if TYPE_CHECKING:
    from services.dossiers.service_layer.fees import FeeUseCases

log = logging.getLogger("dossiers.payments")


@dataclass
class DayReport:
    day: date
    at_platform: int = 0
    amount_vnd: int = 0
    matched: int = 0
    recorded_now: int = 0
    confirmed: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        """Something was done or found (worth a log line)."""
        return bool(self.recorded_now or self.confirmed or self.problems)

    def summary(self) -> str:
        amount = f"{self.amount_vnd:,}".replace(",", ".")
        return (
            f"reconcile {self.day}: {self.at_platform} paid at the platform ({amount} đ), "
            f"{self.matched} matched, {self.recorded_now} recorded now, {self.confirmed} "
            f"confirmed, {len(self.problems)} discrepancies"
        )


async def reconcile_day(app: FeeUseCases, platform: PaymentPlatform, day: date) -> DayReport:
    """PaymentPlatformUnavailable if the platform cannot be asked (nothing half done: each
    recording and confirmation stands on its own and is idempotent)."""
    report = DayReport(day)
    start = datetime.combine(day, time(0), PROVINCE_TZ)
    end = start + timedelta(days=1)
    seen: set[str] = set()
    async for p in platform.paid_between(start, end):
        seen.add(p.payment_id)
        report.at_platform += 1
        report.amount_vnd += p.amount_vnd
        receipt = await asyncio.to_thread(app.payment_receipt, p.payment_id)
        if receipt is None:
            outcome = await asyncio.to_thread(app.take_payment, online_payment(p), "reconcile")
            report.recorded_now += outcome is Outcome.RECORDED
            receipt = await asyncio.to_thread(app.payment_receipt, p.payment_id)
            assert receipt is not None
        where = f"{p.payment_id} ({p.receipt_code}, {p.transaction_ref}, {p.amount_vnd} đ)"
        if receipt.outcome in UNRESOLVED:
            report.problems.append(f"{where}: {receipt.outcome}: {receipt.detail}")
            continue
        if receipt.amount_vnd != p.amount_vnd:
            report.problems.append(f"{where}: recorded here as {receipt.amount_vnd} đ")
            continue
        report.matched += 1
        if p.status == "PAID":
            await platform.confirm(p.payment_id)
            report.confirmed += 1
        if receipt.confirmed_at is None:
            await asyncio.to_thread(app.payment_confirmed, p.payment_id)
    for r in await asyncio.to_thread(app.payment_receipts_between, start, end):
        if r.payment_id in seen:
            continue
        there = await platform.get(r.payment_id)
        if there is None or not there.paid:
            status = "unknown" if there is None else there.status
            report.problems.append(
                f"{r.payment_id} ({r.receipt_code}, {r.amount_vnd} đ): recorded here, "
                f"{status} at the platform"
            )
        elif there.amount_vnd != r.amount_vnd:
            report.problems.append(
                f"{r.payment_id} ({r.receipt_code}): {r.amount_vnd} đ here, "
                f"{there.amount_vnd} đ at the platform"
            )
    return report


def reconcile_task(
    app: FeeUseCases, platform: PaymentPlatform, interval_s: float
) -> Callable[[asyncio.Event], Awaitable[None]]:
    """Today and yesterday every `interval_s`; one log line when something was done or found."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
                return
            today = datetime.now(PROVINCE_TZ).date()
            for day in (today - timedelta(days=1), today):
                try:
                    report = await reconcile_day(app, platform, day)
                except PaymentPlatformUnavailable as e:
                    log.warning("reconciliation skipped", extra={"error": e.message})
                    break
                if report.busy:
                    level = logging.WARNING if report.problems else logging.INFO
                    log.log(level, report.summary(), extra={"problems": report.problems})

    return run
