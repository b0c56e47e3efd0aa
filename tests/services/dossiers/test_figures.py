"""GetDossierFigures' arithmetic on real databases (SQLite and PostgreSQL): hand-made dossiers
early, on the due day and late, a month boundary in province time, a stopped clock; and the
summary kept with every write equal to a count over the dossiers themselves, after a random
history through the use cases (and a write path of another kind, through `_step`)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

import pytest

from lgsp.grpc.errors import PermissionDenied
from lgsp.workdays import PROVINCE_TZ, local_date
from services.dossiers.adapters.figures import _cells
from services.dossiers.adapters.repository import dossier_from_row
from services.dossiers.adapters.tables import dossiers
from services.dossiers.domain.dossier import Dossier, Paper
from services.dossiers.domain.errors import InvalidField
from services.dossiers.domain.fees import OnlinePayment
from services.dossiers.domain.fees import Outcome as FeeOutcome
from services.dossiers.domain.figures import OPEN, TOP_RATING, Grain, recount, segments
from services.dossiers.domain.status import Status
from services.dossiers.service_layer.figures import Figures
from tests.services.dossiers.figures_support import (
    ADMIN,
    AUDITOR,
    PROVINCE,
    PROVINCE_LEADER,
    THANH_SEN,
    TP_CLERK,
    TP_LEADER,
    TRAN_PHU,
    TS_CLERK,
    TS_LEADER,
    Desk,
    local,
    make_desk,
)


@pytest.fixture
def desk(db_url: str) -> Iterator[Desk]:
    d = make_desk(db_url, local(2026, 5, 4, 9, 0))
    yield d
    d.app.engine.dispose()


def test_early_on_the_due_day_late_and_a_stopped_clock(desk: Desk) -> None:
    app = desk.app
    # Accepted Monday 4 May 09:00: due Thursday 7 May (3 working days).
    a = desk.accepted(local(2026, 5, 4, 9, 0))
    b = desk.accepted(local(2026, 5, 4, 9, 5))
    c = desk.accepted(local(2026, 5, 4, 9, 10))
    assert a.due_date == date(2026, 5, 7)
    desk.processed(a, local(2026, 5, 6, 10, 0))  # Wednesday: early, 2 days
    desk.processed(b, local(2026, 5, 7, 16, 59))  # Thursday: the due day, 3 days
    desk.processed(c, local(2026, 5, 8, 8, 0), "chờ xác minh")  # Friday: late, 4 days
    # Papers asked Tuesday, brought Friday: 3 working days paused, due Tuesday 12 May;
    # processed Monday 11: early, 5 working days elapsed - 3 paused = 2.
    e = desk.accepted(local(2026, 5, 4, 9, 15))
    desk.at(local(2026, 5, 5, 10, 0))
    e = app.request_supplement(e.id, "", "Thiếu giấy tờ", [], TS_LEADER)
    desk.at(local(2026, 5, 8, 10, 0))
    e = app.supplement(e.id, "", [Paper("TK", "Tờ khai", originals=1)], TS_CLERK)
    assert e.due_date == date(2026, 5, 12)
    desk.processed(e, local(2026, 5, 11, 9, 0))
    # 06:00 on 1 May in the province is still 30 April in UTC: counted in May. A holiday,
    # so counted from Monday 4: due Thursday 7, open and late on the 11th.
    d = desk.accepted(local(2026, 5, 1, 6, 0))
    assert d.accept_time is not None and d.accept_time.astimezone(PROVINCE_TZ).month == 5
    assert d.due_date == date(2026, 5, 7)
    # Filed, never accepted: refused at the desk, closed unprocessed, not received.
    r = desk.file(local(2026, 5, 6, 8, 0))
    app.refuse(r.id, "", "Không thuộc thẩm quyền", TS_CLERK)
    desk.at(local(2026, 5, 11, 15, 0))

    may = app.figures(
        principal=TS_LEADER, agency_code=THANH_SEN, from_date="2026-05-01", to_date="2026-05-31"
    )
    t = may.total.counts
    assert (t["received"], t["processed"]) == (5, 4)
    assert (t["processed_early"], t["processed_on_time"], t["processed_late"]) == (2, 3, 1)
    assert t["closed_unprocessed"] == 1
    assert may.total.average_processing_days == pytest.approx((2 + 3 + 4 + 2) / 4)
    assert (may.total.in_progress_on_time, may.total.in_progress_late) == (0, 1)
    april = app.figures(
        principal=TS_LEADER, agency_code=THANH_SEN, from_date="2026-04-01", to_date="2026-04-30"
    )
    assert april.total.counts["received"] == 0
    # Loose days (day rows): Wednesday and Thursday.
    two_days = app.figures(principal=ADMIN, from_date="2026-05-06", to_date="2026-05-07")
    assert two_days.total.counts["processed"] == 2
    assert two_days.total.counts["received"] == 0
    by_month = app.figures(
        principal=AUDITOR, from_date="2026-04-15", to_date="2026-05-31", grouping=4
    )
    assert [(r.month, r.counts["received"]) for r in by_month.rows] == [(date(2026, 5, 1), 5)]
    assert by_month.rows[0].in_progress_late == 1  # open at the end: in the last month's row


def test_who_sees_which_figures(desk: Desk) -> None:
    app = desk.app
    desk.accepted(local(2026, 5, 4, 9, 0))
    desk.accepted(local(2026, 5, 4, 9, 0), agency=TRAN_PHU, clerk=TP_CLERK)

    def received(f: Figures) -> int:
        return f.total.counts["received"]

    assert received(app.figures(principal=TP_CLERK)) == 1  # its own agency only
    with pytest.raises(PermissionDenied):
        app.figures(principal=TP_LEADER, agency_code=THANH_SEN)
    tree = app.figures(principal=PROVINCE_LEADER, agency_code=PROVINCE, include_sub_agencies=True)
    assert received(tree) == 2
    assert received(app.figures(principal=PROVINCE_LEADER, agency_code=PROVINCE)) == 0
    by_agency = app.figures(principal=ADMIN, grouping=1)
    assert [(r.agency_code, r.counts["received"]) for r in by_agency.rows] == [
        (THANH_SEN, 1),
        (TRAN_PHU, 1),
    ]
    for bad, field in [
        ({"from_date": "2026-02-30"}, "from_date"),
        ({"to_date": "yesterday"}, "to_date"),
        ({"from_date": "2026-05-02", "to_date": "2026-05-01"}, "from_date"),
        ({"from_date": "2000-01-01", "to_date": "2026-01-01"}, "to_date"),
        ({"grouping": 99}, "grouping"),
        ({"agency_code": "000.00.99.H27"}, "agency_code"),
        ({"procedure_code": "9.999999"}, "procedure_code"),
    ]:
        with pytest.raises(InvalidField) as e:
            app.figures(principal=ADMIN, **bad)  # type: ignore[arg-type]
        assert e.value.field == field


def test_segments_split_a_period_into_months_and_loose_days() -> None:
    d = date
    reporting_month = segments(d(2026, 4, 15), d(2026, 5, 14))
    assert [(s.grain, s.first, s.last) for s in reporting_month] == [
        (Grain.DAY, d(2026, 4, 15), d(2026, 5, 14))
    ]
    whole = segments(d(2026, 1, 1), d(2026, 12, 31))
    assert [(s.grain, s.first, s.last) for s in whole] == [
        (Grain.MONTH, d(2026, 1, 1), d(2026, 12, 1))
    ]
    mixed = segments(d(2025, 12, 20), d(2026, 3, 10))
    assert [(s.grain, s.first, s.last) for s in mixed] == [
        (Grain.DAY, d(2025, 12, 20), d(2025, 12, 31)),
        (Grain.MONTH, d(2026, 1, 1), d(2026, 2, 1)),
        (Grain.DAY, d(2026, 3, 1), d(2026, 3, 10)),
    ]


# --- the summary against a count over the dossiers -------------------------------------


def _random_history(desk: Desk, n: int, seed: int) -> None:
    app, rnd = desk.app, random.Random(seed)
    start = local(2026, 3, 20, 7, 0)
    for i in range(n):
        agency = rnd.choice([THANH_SEN, TRAN_PHU])
        clerk = TS_CLERK if agency == THANH_SEN else TP_CLERK
        leader = TS_LEADER if agency == THANH_SEN else TP_LEADER
        t = start + timedelta(days=rnd.randrange(80), minutes=rnd.randrange(24 * 60))

        def later(t: datetime) -> datetime:
            t = t + timedelta(days=rnd.randrange(7), minutes=rnd.randrange(12 * 60))
            desk.at(t)
            return t

        d = desk.file(t, agency=agency, clerk=clerk, pin=f"0421950{i:05d}")
        fate = rnd.random()
        t = later(t)
        if fate < 0.1:
            app.refuse(d.id, "", "Sai thẩm quyền", clerk)
            continue
        if fate < 0.15:
            app.withdraw(d.id, "", "Rút", clerk)
            continue
        d = app.accept(d.id, "", clerk)
        if rnd.random() < 0.3:
            t = later(t)
            if rnd.random() < 0.5:  # at the desk
                asyncio.run(app.request_fee(d.id, "", 15000, "Lệ phí", clerk))
                t = later(t)
                asyncio.run(app.record_payment(d.id, "", 15000, f"BL{i}", clerk))
            else:  # through the payment platform: its notice saves the dossier itself
                app._step(
                    d.id, "", clerk, ("clerk",),
                    lambda d, now, who, pay=f"PAY{i}": d.request_fee(
                        15000, "Lệ phí", now=now, actor=who, payment_id=pay,
                        payment_url="https://pay.example/x"),
                )  # fmt: skip
                t = later(t)
                paid = OnlinePayment(f"PAY{i}", d.receipt_code, 15000, f"FT{i}", t)
                assert app.take_payment(paid, "test") is FeeOutcome.RECORDED
        if rnd.random() < 0.3:
            t = later(t)
            app.request_supplement(d.id, "", "Thiếu", [], leader)
            t = later(t)
            if rnd.random() < 0.2:
                app.stop(d.id, "", "Quá hạn bổ sung", leader)
                continue
            app.supplement(d.id, "", [Paper("TK", "Tờ khai", originals=1)], clerk)
        if rnd.random() < 0.15:
            continue  # left open
        t = later(t)
        d = app.get(dossier_id=d.id, principal=clerk)
        if d.status is Status.ACCEPTED:
            app.start_processing(d.id, "", "cv", leader)
        t = later(t)
        d = app.complete(d.id, "", "1/KQ", "", "lý do chậm", leader)
        if rnd.random() < 0.7:
            t = later(t)
            d = app.return_result(d.id, "", "", clerk)
            grade = rnd.randint(1, 3)

            def rate(d: Dossier, now: datetime, who: str, grade: int = grade) -> None:
                # A write path of another kind, through `_step`: the figures follow
                # without it knowing of them (the applicant's own rating is tested too).
                d.rating, d.rating_time = grade, now
                d.version += 1

            later(t)
            if rnd.random() < 0.5:  # the applicant's own rating (public, receipt + 4 digits)
                app.rate(d.receipt_code, f"{i:05d}"[-4:], grade)
            else:
                app._step(d.id, "", clerk, ("clerk",), rate)
    desk.at(local(2026, 6, 20, 10, 0))


def _all(desk: Desk) -> list[Dossier]:
    with desk.app.uow() as uow:
        return [dossier_from_row(r) for r in uow.session.execute(dossiers.select())]


def _by_hand(ds: list[Dossier], desk: Desk, first: date, last: date) -> dict[str, dict[str, int]]:
    """The figures per agency counted straight from the dossiers, not from contributions."""
    rule, today = desk.app.rule, local_date(desk.clock.now)
    end = datetime.combine(last + timedelta(days=1), time(), PROVINCE_TZ)
    out: dict[str, dict[str, int]] = {}

    def within(t: datetime | None) -> bool:
        return t is not None and first <= local_date(t) <= last

    for d in ds:
        row = out.setdefault(d.agency_code, {})

        def bump(name: str, n: int = 1) -> None:
            row[name] = row.get(name, 0) + n  # noqa: B023

        if within(d.accept_time):
            bump("received")
        if within(d.finish_time):
            assert d.finish_time and d.due_date and d.accept_time
            day = local_date(d.finish_time)
            bump("processed")
            bump("processed_early", day < d.due_date)
            bump("processed_on_time", day <= d.due_date)
            bump("processed_late", day > d.due_date)
            taken = rule.working_days_taken(d.accept_time, d.finish_time, d.paused_days)
            bump("processing_days", taken)
            bump("paid_online", d.paid_online)
        if d.status in (Status.REFUSED, Status.WITHDRAWN, Status.STOPPED) and within(d.update_time):
            bump("closed_unprocessed")
        if d.rating and within(d.rating_time):
            bump("rated")
            bump("rating_sum", d.rating)
            bump("rating_top", d.rating >= TOP_RATING)
        if d.status in OPEN and d.accept_time and d.accept_time < end:
            assert d.due_date
            bump("open_late", d.due_date < min(last, today))
            bump("open", 1)
    return {a: {k: v for k, v in r.items() if v} for a, r in out.items()}


def test_the_summary_equals_a_count_over_the_dossiers(desk: Desk) -> None:
    _random_history(desk, 60, seed=14)
    ds = _all(desk)
    assert len(ds) == 60
    expected = {
        cell: {k: v for k, v in values.items() if v}
        for cell, values in _cells(recount(ds, desk.app.rule)).items()
    }
    assert desk.app.summary() == {k: v for k, v in expected.items() if v}
    for first, last in [
        (date(2026, 3, 1), date(2026, 6, 30)),  # whole months
        (date(2026, 4, 15), date(2026, 5, 14)),  # the 15th-to-14th reporting month
        (date(2026, 3, 25), date(2026, 5, 31)),  # loose days, then months
        (date(2026, 5, 4), date(2026, 5, 4)),  # one day
    ]:
        f = desk.app.figures(
            principal=ADMIN, grouping=1, from_date=first.isoformat(), to_date=last.isoformat()
        )
        got = {}
        for r in f.rows:
            skip = ("received_online", "fee_paid")
            counts = {k: v for k, v in r.counts.items() if v and k not in skip}
            counts["open"] = r.in_progress_on_time + r.in_progress_late
            counts["open_late"] = r.in_progress_late
            got[r.agency_code] = {k: v for k, v in counts.items() if v}
        want = _by_hand(ds, desk, first, last)
        assert {a: v for a, v in got.items() if v} == {a: v for a, v in want.items() if v}
    # A recount from the dossiers gives the same table.
    before = desk.app.summary()
    desk.app.rebuild_figures()
    assert desk.app.summary() == before
    totals = desk.app.figures(principal=ADMIN, from_date="2026-03-01", to_date="2026-06-30")
    c = totals.total.counts  # the history went every way the figures count
    assert all(c[k] for k in ("processed_early", "processed_late", "closed_unprocessed"))
    assert all(c[k] for k in ("rated", "rating_top", "paid_online", "fee_paid"))
    assert c["paid_online"] < c["fee_paid"]  # some paid at the desk
    assert totals.total.in_progress_late + totals.total.in_progress_on_time
