"""Dossiers figures: GetDossierFigures' use case over 1,000,000 dossiers on SQLite and on
PostgreSQL, beside the brute-force count over the dossiers for the same scope and period (the
reference, same process, same data); and the cost of a due-date computation beside plain date
arithmetic.

The dossiers are generated straight into the tables (bulk inserts of the rows the repository
would write, `_row_values`) with their summary (the contributions of each, as the use cases
record them), not through gRPC: a province of 160 agencies (20 departments, 14 districts of
10 communes), the catalogue's procedures, two years of dossiers, most processed (a few late),
some open, refused or withdrawn, a share online, paid online and rated.
PostgreSQL: a database created on LGSP_BENCH_POSTGRES (default
postgresql://postgres@127.0.0.1:5432/postgres) and dropped at the end.

    python -m bench.dossiers_figures [--quick] [--dossiers N] [--queries N]
                                     [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from lgsp import db
from lgsp.agencies import Agency, AgencyDirectory
from lgsp.auth import Principal
from lgsp.workdays import PROVINCE_TZ, WorkingCalendar
from services.dossiers.adapters.figures import replace_figures
from services.dossiers.adapters.repository import dossier_row
from services.dossiers.adapters.tables import dossiers
from services.dossiers.catalogue import load_catalogue
from services.dossiers.domain.deadlines import DueDateRule
from services.dossiers.domain.dossier import Applicant, ApplicantKind, Channel, Dossier
from services.dossiers.domain.figures import Key, contributions
from services.dossiers.domain.status import Status
from services.dossiers.plugin import PLUGIN
from services.dossiers.service_layer.dossiers import DossiersApp

NOW = datetime(2026, 6, 20, 10, 0, tzinfo=PROVINCE_TZ)
FIRST_DAY = date(2024, 6, 1)
ADMIN = Principal(subject="bench", kind="user", roles=frozenset({"admin"}))
NAMES = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Đức Cường", "Phạm Thị Dung", "Hoàng Văn Em"]
POSTGRES = os.environ.get("LGSP_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def province() -> AgencyDirectory:
    root = Agency("000.00.00.H27", "UBND tỉnh", "UBND")
    out = [root]
    for i in range(1, 21):
        out.append(Agency(f"000.00.{i:02d}.H27", f"Sở {i}", "S", root.code))
    for dist in range(1, 15):
        district = Agency(f"000.{dist:02d}.00.H27", f"UBND huyện {dist}", "UBND", root.code)
        out.append(district)
        for c in range(1, 11):
            out.append(
                Agency(f"000.{dist:02d}.{c + 20:02d}.H27", f"UBND xã {c}", "UBND", district.code)
            )
    return AgencyDirectory(out)


def generate(
    n: int, agencies: Sequence[str], rule: DueDateRule, seed: int = 7
) -> Iterator[Dossier]:
    """`n` dossiers in their final state of the bench's day (NOW), oldest first."""
    rnd = random.Random(seed)
    procedures = load_catalogue()
    offered = {a: rnd.sample(procedures, 8) for a in agencies}
    span = (NOW.date() - FIRST_DAY).days * 86400
    start = datetime.combine(FIRST_DAY, datetime.min.time(), PROVINCE_TZ)
    for i in range(n):
        agency = rnd.choice(agencies)
        p = rnd.choice(offered[agency])
        submitted = start + timedelta(seconds=int(span * i / n) + rnd.randrange(3600))
        online = rnd.random() < 0.35
        d = Dossier(
            id=str(uuid.UUID(int=rnd.getrandbits(128))),
            receipt_code=f"{agency}-{submitted:%y%m%d}-{i:07d}",
            procedure_code=p.code,
            procedure_name=p.name,
            agency_code=agency,
            applicant=Applicant(ApplicantKind.CITIZEN, rnd.choice(NAMES), f"042{i:09d}"),
            status=Status.SUBMITTED,
            channel=Channel.ONLINE if online else Channel.COUNTER,
            papers=(),
            processing_days=p.processing_days,
            submit_time=submitted,
            receiver_user_id="vt",
            fee_vnd=p.fee_vnd,
            update_time=submitted,
        )
        fate = rnd.random()
        t = submitted + timedelta(hours=rnd.randrange(1, 30))
        if fate < 0.02:
            d.status, d.update_time = Status.REFUSED, t
            yield d
            continue
        d.accept_time, d.status = t, Status.ACCEPTED
        d.due_date = rule.due_date(t, p.processing_days)
        if fate < 0.03:
            d.status, d.update_time = Status.WITHDRAWN, t + timedelta(days=1)
        elif submitted > NOW - timedelta(days=20) and fate < 0.5:
            d.status = rnd.choice([Status.IN_PROGRESS, Status.SUPPLEMENT_REQUESTED])
        else:
            # Most a few days early, some on the day, ~2 % late.
            slack = rnd.choice([-3, -2, -1, -1, 0, 0]) if rnd.random() > 0.02 else rnd.randint(1, 5)
            due = datetime.combine(d.due_date, datetime.min.time(), PROVINCE_TZ)
            finish = max(t + timedelta(hours=1), due + timedelta(days=slack, hours=10))
            d.finish_time, d.status, d.update_time = finish, Status.PROCESSED, finish
            d.on_time = finish.date() <= d.due_date
            d.fee_paid = p.fee_vnd > 0
            d.paid_online = d.fee_paid and online and rnd.random() < 0.6
            if rnd.random() < 0.9:
                d.return_time = finish + timedelta(days=rnd.randrange(3))
                d.status, d.update_time = Status.RESULT_RETURNED, d.return_time
                if rnd.random() < 0.3:
                    d.rating, d.rating_time = rnd.choice([1, 2, 2, 3, 3, 3]), d.return_time
        if d.update_time and d.update_time > NOW:  # nothing happens after the bench's day
            d.update_time = NOW
        yield d


def load(app: DossiersApp, n: int, agencies: Sequence[str]) -> float:
    """The dossiers and their summary, in chunks; seconds taken."""
    started = time.perf_counter()
    totals: Counter[Key] = Counter()
    chunk: list[dict[str, Any]] = []
    done = 0

    def flush() -> None:
        with app.engine.begin() as conn:
            if sqlite:  # a big page cache for the unique indexes' random inserts
                conn.exec_driver_sql("PRAGMA cache_size=-500000")
            conn.execute(sa.insert(dossiers), chunk)
        chunk.clear()

    # The secondary indexes built once after the load, not row by row during it.
    sqlite = app.engine.dialect.name == "sqlite"
    with app.engine.begin() as conn:
        for index in dossiers.indexes:
            index.drop(conn)

    for d in generate(n, agencies, app.rule):
        totals.update(contributions(d, app.rule))
        chunk.append(dossier_row(d))
        if len(chunk) == 20_000:
            flush()
            done += 20_000
            if done % 200_000 == 0:
                print(f"  {done:,} dossiers, {time.perf_counter() - started:.0f} s", flush=True)
    if chunk:
        flush()
    with app.engine.begin() as conn:
        if sqlite:
            conn.exec_driver_sql("PRAGMA cache_size=-500000")
        for index in dossiers.indexes:
            index.create(conn)
    with app.uow() as uow:
        rows = replace_figures(uow.session, totals)
        uow.commit()
    if app.engine.dialect.name == "postgresql":
        with app.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    else:
        with app.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
    print(f"  summary: {rows:,} rows", flush=True)
    return time.perf_counter() - started


@dataclass(frozen=True)
class Query:
    name: str
    agency: str
    sub: bool
    procedure: str
    first: date
    last: date
    grouping: int


def queries(directory: AgencyDirectory, rnd: random.Random, n: int) -> dict[str, list[Query]]:
    districts = [c for c in directory.codes() if c.split(".")[2] == "00" and c[4:6] != "00"]
    communes = [c for c in directory.codes() if int(c.split(".")[2]) > 20]
    procedures = [p.code for p in load_catalogue()]

    def month(back: int) -> tuple[date, date]:
        first = date(2026, 6, 1)
        for _ in range(back):
            first = (first - timedelta(days=1)).replace(day=1)
        last = ((first + timedelta(days=32)).replace(day=1)) - timedelta(days=1)
        return first, last

    def make(kind: str) -> Query:
        if kind == "province, a month":
            return Query(kind, "", False, "", *month(rnd.randrange(1, 20)), 0)
        if kind == "province by agency, a year":
            return Query(kind, "", False, "", date(2025, 1, 1), date(2025, 12, 31), 1)
        if kind == "district tree by month, 15th-14th":
            f, _ = month(rnd.randrange(2, 20))
            first = f.replace(day=15)
            last = (first + timedelta(days=31)).replace(day=14)
            return Query(kind, rnd.choice(districts), True, "", first, last, 4)
        if kind == "commune x procedure, a quarter":
            q = rnd.randrange(0, 7)
            first = date(2024 + (6 + 3 * q) // 12, (6 + 3 * q) % 12 + 1, 1)
            last = (first + timedelta(days=92)).replace(day=1) - timedelta(days=1)
            return Query(kind, rnd.choice(communes), False, rnd.choice(procedures), first, last, 0)
        # province by procedure, two years with loose days at both ends
        return Query(kind, "", False, "", date(2024, 6, 11), date(2026, 6, 9), 2)

    kinds = [
        "province, a month",
        "province by agency, a year",
        "district tree by month, 15th-14th",
        "commune x procedure, a quarter",
        "province by procedure, 2 years",
    ]
    return {k: [make(k) for _ in range(n)] for k in kinds}


def run_figures(app: DossiersApp, q: Query) -> object:
    return app.figures(
        principal=ADMIN,
        agency_code=q.agency,
        include_sub_agencies=q.sub,
        procedure_code=q.procedure,
        from_date=q.first.isoformat(),
        to_date=q.last.isoformat(),
        grouping=q.grouping,
    )


def brute_force(app: DossiersApp, directory: AgencyDirectory, q: Query) -> object:
    """The reference: the same counts straight from the dossiers (no summary)."""
    c = dossiers.c
    a = datetime.combine(q.first, datetime.min.time(), PROVINCE_TZ).astimezone(UTC)
    b = datetime.combine(q.last + timedelta(days=1), datetime.min.time(), PROVINCE_TZ)
    b = b.astimezone(UTC)

    def within(col: Any) -> Any:
        return sa.and_(col >= a, col < b)

    keys = {0: [], 1: [c.agency_code], 2: [c.procedure_code], 4: []}[q.grouping]
    stmt = sa.select(
        *keys,
        sa.func.sum(sa.case((within(c.accept_time), 1), else_=0)),
        sa.func.sum(sa.case((within(c.finish_time), 1), else_=0)),
        sa.func.sum(sa.case((sa.and_(within(c.finish_time), c.on_time.is_(False)), 1), else_=0)),
        sa.func.sum(sa.case((sa.and_(within(c.accept_time), c.channel == 2), 1), else_=0)),
        sa.func.sum(sa.case((within(c.rating_time), c.rating), else_=0)),
    ).group_by(*keys)
    if q.agency:
        codes = [q.agency, *(directory.descendants(q.agency) if q.sub else ())]
        stmt = stmt.where(c.agency_code.in_(codes))
    if q.procedure:
        stmt = stmt.where(c.procedure_code == q.procedure)
    with app.engine.connect() as conn:
        return conn.execute(stmt).all()


def timed(fn: Callable[[], object], n: int) -> list[float]:
    fn()  # warm
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def bench_backend(url: str, label: str, n: int, nq: int) -> bool:
    engine = db.create_engine(url)
    directory = province()
    try:
        assert PLUGIN.migrations is not None
        db.migrate(engine, PLUGIN.migrations)
        rule = DueDateRule(WorkingCalendar())
        app = DossiersApp(engine, directory, rule, clock=lambda: NOW)
        app.seed(load_catalogue())
        leaves = [c for c in directory.codes() if not directory.descendants(c)]
        print(f"{label}: generating {n:,} dossiers over {len(leaves)} agencies", flush=True)
        secs = load(app, n, leaves)
        print(f"{label}: loaded in {secs:.0f} s ({n / secs:,.0f} dossiers/s)", flush=True)
        sets = queries(directory, random.Random(3), nq)
        print(
            f"\n{label}, {n:,} dossiers: figures query (ms) beside the brute-force count"
            f" ({nq} queries per kind, reference {max(3, nq // 20)})"
        )
        print(
            f"  {'query':38} {'p50':>8} {'p95':>8} {'ref p50':>9} {'ref p95':>9} {'ratio p95':>10}"
        )
        ok = True
        for kind, qs in sets.items():
            it = iter(qs * 2)
            times = timed(lambda: run_figures(app, next(it)), len(qs))  # noqa: B023
            rq = qs[: max(3, nq // 20)]
            rit = iter(rq * 2)
            ref = timed(lambda: brute_force(app, directory, next(rit)), len(rq))  # noqa: B023
            p95 = pct(times, 0.95)
            ok &= p95 < 200
            print(
                f"  {kind:38} {statistics.median(times):8.1f} {p95:8.1f}"
                f" {statistics.median(ref):9.1f} {pct(ref, 0.95):9.1f}"
                f" {pct(ref, 0.95) / p95:9.0f}x",
                flush=True,
            )
        print(f"  goal p95 < 200 ms: {'met' if ok else 'NOT met'}")
        return ok
    finally:
        engine.dispose()


def due_date_cost(calls: int) -> None:
    rule = DueDateRule(WorkingCalendar())
    rnd = random.Random(5)
    start = datetime(2024, 1, 1, tzinfo=PROVINCE_TZ)
    times = [start + timedelta(minutes=rnd.randrange(3 * 365 * 1440)) for _ in range(calls)]
    days = [rnd.choice([0, 3, 5, 10, 15, 20, 30]) for _ in range(calls)]
    rule.due_date(times[0], 5)  # the calendar's table built
    t = time.perf_counter()
    for when, n in zip(times, days, strict=True):
        rule.due_date(when, n)
    cost = (time.perf_counter() - t) / calls * 1e6
    t = time.perf_counter()
    for when, n in zip(times, days, strict=True):
        when.astimezone(PROVINCE_TZ).date() + timedelta(days=n + n // 5 * 2)
    ref = (time.perf_counter() - t) / calls * 1e6
    print(
        f"\ndue date (DueDateRule.due_date, cut-off, holidays, lunar Tết): {cost:.2f} µs a call;"
        f" reference, the calendar days by plain date arithmetic: {ref:.2f} µs ({cost / ref:.1f}x)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dossiers_figures", description=__doc__)
    parser.add_argument("--dossiers", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=100, help="figures queries per kind")
    parser.add_argument("--quick", action="store_true", help="50,000 dossiers, 20 queries")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args(argv)
    n = 50_000 if args.quick else args.dossiers
    nq = 20 if args.quick else args.queries
    due_date_cost(20_000 if args.quick else 200_000)
    ok = True
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="lgsp-bench-dossiers-") as tmp:
            ok &= bench_backend(f"sqlite:///{Path(tmp) / 'dossiers.db'}", "SQLite", n, nq)
    if args.backend in ("postgresql", "both"):
        import psycopg
        from psycopg import sql

        name = f"lgsp_bench_{uuid.uuid4().hex[:12]}"
        info = psycopg.conninfo.conninfo_to_dict(POSTGRES)
        try:
            with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=3) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as e:
            print(f"PostgreSQL at {POSTGRES} unavailable: {e}")
            return 1
        url = (
            f"postgresql+psycopg://{info.get('user', 'postgres')}@{info.get('host', '127.0.0.1')}"
            f":{info.get('port', 5432)}/{name}"
        )
        try:
            ok &= bench_backend(url, "PostgreSQL", n, nq)
        finally:
            with psycopg.connect(POSTGRES, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
