"""ListDossiers in process on SQLite and PostgreSQL: who sees which dossiers, the filters, the
search by receipt code, applicant name (accents and case ignored) and number, newest first,
page tokens that hold while dossiers keep coming and refuse to be edited."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lgsp.auth import Principal
from lgsp.grpc.errors import PermissionDenied
from services.dossiers.domain.errors import InvalidField
from services.dossiers.service_layer.listing import ListRequest
from tests.services.dossiers.figures_support import (
    ADMIN,
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


def codes(desk: Desk, principal: Principal = TS_CLERK, **filters: Any) -> list[str]:
    page = desk.app.list_dossiers(ListRequest(**filters), principal)
    assert page.total_size == len(page.dossiers) or filters.get("page_size")
    return [d.receipt_code for d in page.dossiers]


def test_officials_see_their_agencies_and_those_below(desk: Desk) -> None:
    ts = desk.file(local(2026, 5, 4, 9, 0))
    tp = desk.file(local(2026, 5, 4, 9, 1), agency=TRAN_PHU, clerk=TP_CLERK)
    assert codes(desk, TS_CLERK) == [ts.receipt_code]
    assert codes(desk, TP_LEADER) == [tp.receipt_code]
    assert codes(desk, PROVINCE_LEADER) == [tp.receipt_code, ts.receipt_code]  # newest first
    assert codes(desk, PROVINCE_LEADER, agency_code=THANH_SEN) == [ts.receipt_code]
    with pytest.raises(PermissionDenied):
        codes(desk, TP_CLERK, agency_code=THANH_SEN)  # another agency's
    with pytest.raises(PermissionDenied):
        codes(desk, ADMIN)  # the platform's admin holds no official role: no personal data


def test_filters(desk: Desk) -> None:
    app = desk.app
    old = desk.accepted(local(2026, 5, 4, 9, 0))  # due Thursday 7 May
    new = desk.file(local(2026, 5, 6, 9, 0))
    started = app.start_processing(old.id, "", "cv-hoa", TS_LEADER)
    desk.at(local(2026, 5, 11, 9, 0))
    assert codes(desk, statuses=(4,)) == [started.receipt_code]
    assert codes(desk, statuses=(1, 4)) == [new.receipt_code, old.receipt_code]
    assert codes(desk, handler_user_id="cv-hoa") == [old.receipt_code]
    assert codes(desk, overdue_only=True) == [old.receipt_code]
    assert codes(desk, from_date="2026-05-05") == [new.receipt_code]
    assert codes(desk, to_date="2026-05-04") == [old.receipt_code]
    assert codes(desk, procedure_code="1.001193") == []
    cases: list[tuple[dict[str, Any], str]] = [
        ({"statuses": (42,)}, "statuses[0]"),
        ({"from_date": "4/5/2026"}, "from_date"),
        ({"from_date": "2026-05-06", "to_date": "2026-05-05"}, "from_date"),
        ({"page_size": -1}, "page_size"),
        ({"query": "x" * 101}, "query"),
        ({"query": "nguyen\x00"}, "query"),
    ]
    for bad, field in cases:
        with pytest.raises(InvalidField) as e:
            codes(desk, **bad)
        assert e.value.field == field


def test_search_by_name_number_and_receipt_code(desk: Desk) -> None:
    a = desk.file(local(2026, 5, 4, 9, 0), name="Nguyễn Văn A", pin="042095000001")
    duc = desk.file(local(2026, 5, 4, 9, 1), name="Trần Đức Anh", pin="042095000002")
    firm = desk.file(
        local(2026, 5, 4, 9, 2),
        name="Lê Thị Hương",
        pin="042195000003",
        organization=("Công ty TNHH Đại Phát", "3001234567"),
    )
    assert codes(desk, query="nguyen van a") == [a.receipt_code]
    assert codes(desk, query="NGUYỄN văn") == [a.receipt_code]
    assert codes(desk, query="duc anh") == [duc.receipt_code]
    assert codes(desk, query="an") == [duc.receipt_code]  # a word's start: "Anh", not "Văn"
    assert codes(desk, query="dai phat") == [firm.receipt_code]
    assert codes(desk, query="042095000002") == [duc.receipt_code]  # the whole PIN
    assert codes(desk, query="0002") == []  # its last digits are the citizen's lookup secret
    assert codes(desk, query="300-1234567") == [firm.receipt_code]
    assert codes(desk, query=a.receipt_code) == [a.receipt_code]
    assert codes(desk, query=f"{THANH_SEN}-260504".lower()) == [
        firm.receipt_code,
        duc.receipt_code,
        a.receipt_code,
    ]
    assert codes(desk, query="100%_") == []  # LIKE's wildcards are plain characters


def test_page_tokens_hold_and_refuse_edits(desk: Desk) -> None:
    filed = [desk.file(local(2026, 5, 4, 8, i)).receipt_code for i in range(5)]
    app = desk.app
    first = app.list_dossiers(ListRequest(page_size=2), TS_CLERK)
    assert [d.receipt_code for d in first.dossiers] == filed[:2:-1][:2]
    assert first.total_size == 5
    desk.file(local(2026, 5, 4, 9, 30))  # a newer one: the next pages do not shift
    seen = [d.receipt_code for d in first.dossiers]
    token = first.next_page_token
    while token:
        page = app.list_dossiers(ListRequest(page_size=2, page_token=token), TS_CLERK)
        seen += [d.receipt_code for d in page.dossiers]
        token = page.next_page_token
    assert seen == filed[::-1]
    token = first.next_page_token
    middle = len(token) // 2
    edited = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    for bad in [token + "x", edited, "not-a-token", "AAAA.BBBB"]:
        with pytest.raises(InvalidField) as e:
            app.list_dossiers(ListRequest(page_size=2, page_token=bad), TS_CLERK)
        assert e.value.field == "page_token"
    with pytest.raises(InvalidField):  # a token of other filters
        app.list_dossiers(
            ListRequest(page_size=2, page_token=first.next_page_token, query="hoa"), TS_CLERK
        )
