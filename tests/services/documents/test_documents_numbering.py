"""Numbering (Nghị định 30/2020): the notation rules, and numbers unique and gap-free under
concurrent issuing, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from lgsp import db
from lgsp.auth import Principal
from services.documents.adapters import tables as t
from services.documents.bootstrap import MIGRATIONS
from services.documents.domain.document_types import DOCUMENT_TYPES, document_type
from services.documents.domain.errors import InvalidField, InvalidTransition
from services.documents.domain.model import Direction, Document, Signer, SigningMode
from services.documents.domain.numbering import (
    Book,
    IssuedNumber,
    book_for,
    format_number,
    notation,
)
from services.documents.service_layer.documents import DocumentsApp
from services.documents.transport import BusTransport

from .workflow_support import AGENCIES, STP, UBND


def kind(code: str):  # type: ignore[no-untyped-def]
    k = document_type(code)
    assert k is not None
    return k


def test_notation_rules() -> None:
    assert format_number(5) == "05" and format_number(123) == "123"
    assert (
        IssuedNumber(Book.OUTGOING, 2026, 123, notation(kind("QĐ"), "UBND", 2026)).number_notation
        == "123/QĐ-UBND"
    )
    assert (
        IssuedNumber(
            Book.OUTGOING, 2026, 7, notation(kind("CV"), "UBND", 2026, "VP")
        ).number_notation
        == "07/UBND-VP"
    )
    assert notation(kind("CV"), "STP", 2026) == "STP"
    assert (
        IssuedNumber(Book.LEGAL, 2018, 28, notation(kind("QĐ-QPPL"), "TTg", 2018)).number_notation
        == "28/2018/QĐ-TTg"
    )
    assert notation(kind("TTr"), "STP", 2026) == "TTr-STP"
    assert book_for(kind("NQ-QPPL")) == Book.LEGAL and book_for(kind("NQ")) == Book.OUTGOING
    with pytest.raises(InvalidField):
        notation(kind("QĐ"), "", 2026)
    with pytest.raises(InvalidField):
        notation(kind("CV"), "UBND", 2026, "V/P")
    administrative = [k for k in DOCUMENT_TYPES.values() if not k.legal]
    assert len(administrative) == 29
    assert sorted(k.code for k in administrative if not k.abbreviation) == ["CV", "TCg"]


CLERK = Principal(subject="ubnd-vt", kind="user", grants={UBND: frozenset({"clerk"})})
LEADER = Principal(
    subject="ubnd-ld", kind="user", grants={UBND: frozenset({"leader", "specialist"})}
)
STP_ALL = Principal(
    subject="stp-ld", kind="user", grants={STP: frozenset({"leader", "specialist", "clerk"})}
)


def signed_documents(
    app: DocumentsApp, n: int, agency: str, who: Principal, type_code: str = "QĐ"
) -> list[Document]:
    docs = []
    for i in range(n):
        now = datetime.now(UTC)
        d = app.create_draft(
            who,
            Document(
                id="",
                direction=Direction.OUTGOING,
                agency_code=agency,
                type_code=type_code,
                subject=f"Văn bản số {i}",
                created_by="",
                create_time=now,
                update_time=now,
            ),
        )
        d = app.submit_for_review(who, d.id, str(d.version), who.subject, "")
        d = app.review(who, d.id, str(d.version), True, who.subject, "")
        d = app.sign(
            who, d.id, str(d.version), Signer(full_name="Lê Văn Cường", mode=SigningMode.DIRECT)
        )
        docs.append(d)
    return docs


@pytest.fixture
def app(db_url: str):  # type: ignore[no-untyped-def]
    engine = (
        db.create_engine(db_url, pool_size=20)
        if db_url.startswith("postgresql")
        else db.create_engine(db_url)
    )
    db.migrate(engine, MIGRATIONS)
    yield DocumentsApp(engine, AGENCIES, BusTransport())
    engine.dispose()


def test_concurrent_issuing_is_unique_and_gap_free(app: DocumentsApp) -> None:
    n = 24
    ubnd = signed_documents(app, n, UBND, LEADER)
    stp = signed_documents(app, 6, STP, STP_ALL, "TTr")
    start = threading.Barrier(8)

    def issue(doc: Document) -> str:
        try:
            start.wait(timeout=5)
        except threading.BrokenBarrierError:
            pass
        who = CLERK if doc.agency_code == UBND else STP_ALL
        return app.issue(who, doc.id, str(doc.version), None).number_notation

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(issue, ubnd + stp))
    numbers = sorted(int(r.split("/")[0]) for r in results[:n])
    assert numbers == list(range(1, n + 1))
    assert sorted(results[n:]) == [f"{i:02d}/TTr-STP" for i in range(1, 7)]
    with app.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.number_books.c.agency_code, t.number_books.c.last_number).order_by(
                t.number_books.c.agency_code
            )
        ).all()
    assert [tuple(r) for r in rows] == [(UBND, n), (STP, 6)]


class Clock:
    """The service's clock, moved by the test (the province's books follow its date)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def test_books_restart_each_year_and_legal_has_its_own(app: DocumentsApp) -> None:
    clock = Clock(datetime(2026, 12, 31, 3, tzinfo=UTC))  # 10:00 in Hà Tĩnh
    app.clock = clock
    a, b, c, legal = signed_documents(app, 3, UBND, LEADER) + signed_documents(
        app, 1, UBND, LEADER, "QĐ-QPPL"
    )
    assert app.issue(CLERK, a.id, str(a.version), None).number_notation == "01/QĐ-UBND"
    clock.at = datetime(2027, 1, 2, 3, tzinfo=UTC)
    assert app.issue(CLERK, b.id, str(b.version), None).number_notation == "01/QĐ-UBND"
    assert app.issue(CLERK, c.id, str(c.version), None).number_notation == "02/QĐ-UBND"
    issued = app.issue(CLERK, legal.id, str(legal.version), None)
    assert issued.number_notation == "01/2027/QĐ-UBND"


def test_backdating_is_refused_and_takes_no_number(app: DocumentsApp) -> None:
    """A careless (or hurried) clerk dates documents back: into last year's closed book, or
    before the book's last number. Both are refused, naming promulgation_date, and no number
    is used; the next issue takes the next number, dated in order."""
    clock = Clock(datetime(2026, 3, 10, 3, tzinfo=UTC))
    app.clock = clock
    a, b, c = signed_documents(app, 3, UBND, LEADER)
    with pytest.raises(InvalidTransition) as closed:
        app.issue(CLERK, a.id, str(a.version), date(2025, 12, 31))
    assert "promulgation_date" in closed.value.message and "2025 book is closed" in (
        closed.value.message
    )
    with pytest.raises(InvalidField) as future:  # dating ahead would block the book's year
        app.issue(CLERK, a.id, str(a.version), date(2026, 12, 31))
    assert future.value.field == "promulgation_date"
    assert app.issue(CLERK, a.id, str(a.version), date(2026, 3, 9)).number_notation == (
        "01/QĐ-UBND"
    )
    with pytest.raises(InvalidTransition) as earlier:
        app.issue(CLERK, b.id, str(b.version), date(2026, 3, 8))
    assert "promulgation_date" in earlier.value.message and "2026-03-09" in (earlier.value.message)
    issued = app.issue(CLERK, b.id, str(b.version), date(2026, 3, 9))  # same day is fine
    assert issued.number_notation == "02/QĐ-UBND"
    assert app.issue(CLERK, c.id, str(c.version), None).number_notation == "03/QĐ-UBND"
    with app.engine.connect() as conn:
        books = conn.execute(sa.select(t.number_books.c.year, t.number_books.c.last_number)).all()
    assert [tuple(r) for r in books] == [(2026, 3)]  # the 2025 book was never reopened


def test_unique_constraint_is_the_last_guard(app: DocumentsApp) -> None:
    """Even a buggy writer cannot store two documents with one number of one book."""
    a, b = signed_documents(app, 2, UBND, LEADER)
    a = app.issue(CLERK, a.id, str(a.version), None)
    with pytest.raises(sa.exc.IntegrityError), app.engine.begin() as conn:
        conn.execute(
            sa.update(t.documents)
            .where(t.documents.c.id == b.id)
            .values(book="outgoing", book_year=date.today().year, book_number=1)
        )
