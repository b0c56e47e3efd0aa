"""The rules on an arriving document (domain/arrival.py) and the lenient reader of refused
packages (edxml/salvage.py), hostile inputs included."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, date, datetime

import pytest

from lgsp.connectors.document_axis import Agency
from lgsp.connectors.errors import Unavailable
from services.documents import edxml
from services.documents.domain.arrival import (
    SIGNER_AGENCY_MISMATCH,
    arrival_refusal_vi,
    check_arrival,
    check_dates,
    check_number_notation,
    same_document,
    signer_warning,
)
from services.documents.domain.errors import InvalidField
from services.documents.domain.model import Direction, Document, IncomingStatus
from services.documents.edxml.salvage import salvage
from services.documents.outside_directory import OutsideDirectory

TODAY = date(2026, 3, 10)
SENDER = "000.00.00.H09"
NS = edxml.EDXML_NS
ERROR = edxml.EdxmlError("MessageHeader/PromulgationInfo/PromulgationDate", "not a real date")


def incoming(**kw: object) -> Document:
    now = datetime(2026, 3, 10, 8, tzinfo=UTC)
    fields: dict[str, object] = {
        "id": "d1",
        "direction": Direction.INCOMING,
        "agency_code": "000.00.00.H27",
        "type_code": "CV",
        "subject": "Về việc phối hợp",
        "created_by": "",
        "create_time": now,
        "update_time": now,
        "incoming_status": IncomingStatus.ARRIVED,
        "number_notation": "45/UBND-NN",
        "promulgation_date": date(2026, 3, 9),
        "sender_agency_code": SENDER,
    }
    fields.update(kw)
    return Document(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text", ["123/QĐ-UBND", "28/2018/QĐ-TTg", "45/UBND-VP", "05/TB-VP.UBND", "1234/BTC-NSNN"]
)
def test_real_numbers_and_notations_pass(text: str) -> None:
    check_number_notation(text)


@pytest.mark.parametrize(
    "text",
    [
        "abc",
        "12",
        "/QĐ-UBND",
        "12/",
        "0/QĐ-UBND",
        "12/QĐ--UBND",
        "12/QĐ UBND",
        "1/<b>",
        "1/" + "A" * 120,
        "12/QĐ-\x00",
    ],
)
def test_malformed_numbers_are_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidField) as e:
        check_number_notation(text)
    assert e.value.field == "document.number_notation"


def test_dates_in_the_future_or_due_before_promulgation_are_refused() -> None:
    check_dates(date(2026, 3, 10), date(2026, 3, 10), TODAY)  # the same day is fine
    with pytest.raises(InvalidField) as e:
        check_dates(date(2026, 3, 11), None, TODAY)
    assert e.value.field == "document.promulgation_date"
    with pytest.raises(InvalidField) as e:
        check_dates(date(2026, 3, 9), date(2026, 3, 8), TODAY)
    assert e.value.field == "document.due_date"


def test_the_refusal_sent_back_is_vietnamese_and_names_the_value() -> None:
    assert arrival_refusal_vi(incoming(), TODAY) == ""
    assert "abc" in arrival_refusal_vi(incoming(number_notation="abc"), TODAY)
    assert arrival_refusal_vi(incoming(promulgation_date=date(2026, 4, 1)), TODAY).startswith(
        "Ngày ban hành 01/04/2026 sau ngày nhận"
    )
    late = arrival_refusal_vi(incoming(due_date=date(2026, 3, 1)), TODAY)
    assert late == "Hạn xử lý 01/03/2026 trước ngày ban hành 09/03/2026."
    with pytest.raises(InvalidField):
        check_arrival(incoming(number_notation="abc"), TODAY)


def test_the_same_document_is_sender_number_and_date_unless_refused_or_recalled() -> None:
    doc = incoming()
    assert same_document(doc, SENDER, "45/UBND-NN", date(2026, 3, 9))
    assert same_document(doc, SENDER, " 45/ubnd-nn ", date(2026, 3, 9))
    assert not same_document(doc, SENDER, "45/UBND-NN", date(2026, 3, 8))
    assert not same_document(doc, "000.00.00.G09", "45/UBND-NN", date(2026, 3, 9))
    assert same_document(
        incoming(incoming_status=IncomingStatus.DONE), SENDER, "45/UBND-NN", date(2026, 3, 9)
    )
    for closed in (IncomingStatus.REFUSED, IncomingStatus.RECALLED):
        assert not same_document(
            incoming(incoming_status=closed), SENDER, "45/UBND-NN", date(2026, 3, 9)
        )


def test_a_signature_of_another_agency_is_a_warning() -> None:
    assert signer_warning(SENDER, "") is None
    assert signer_warning(SENDER, SENDER) is None
    w = signer_warning(SENDER, "000.00.00.H27")
    assert w is not None and w.code == SIGNER_AGENCY_MISMATCH
    assert "000.00.00.H27" in w.message and SENDER in w.message


def test_assigning_a_due_date_before_promulgation_is_refused() -> None:
    doc = incoming(incoming_status=IncomingStatus.ACCEPTED)
    with pytest.raises(InvalidField) as e:
        doc.assign("u1", (), date(2026, 3, 1), "ld", datetime.now(UTC), "")
    assert e.value.field == "due_date"


def package_xml(
    date_text: str = "2026/02/30",
    sender: str = SENDER,
    document_id: str = "000.00.00.H09,2026/02/30,45/UBND-NN",
    prefix: str = "edXML:",
) -> bytes:
    xmlns = f'xmlns:edXML="{NS}"' if prefix else ""
    p = prefix
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<{p}edXMLEnvelope {xmlns}><{p}edXMLHeader><{p}MessageHeader>
<{p}From><{p}OrganId>{sender}</{p}OrganId><{p}OrganName>UBND tỉnh Nghệ An</{p}OrganName></{p}From>
<{p}To><{p}OrganId>000.00.00.H27</{p}OrganId></{p}To>
<{p}To><{p}OrganId>not a code</{p}OrganId></{p}To>
<{p}Code><{p}CodeNumber>45</{p}CodeNumber><{p}CodeNotation>UBND-NN</{p}CodeNotation></{p}Code>
<{p}PromulgationInfo><{p}Place>Nghệ An</{p}Place>
<{p}PromulgationDate>{date_text}</{p}PromulgationDate></{p}PromulgationInfo>
<{p}DocumentId>{document_id}</{p}DocumentId>
</{p}MessageHeader></{p}edXMLHeader></{p}edXMLEnvelope>""".encode()


def test_salvage_reads_the_routing_fields_of_a_package_the_schema_refuses() -> None:
    found = salvage(package_xml(), ERROR)
    assert found is not None
    assert found.sender == SENDER
    assert found.document_id == "000.00.00.H09,2026/02/30,45/UBND-NN"
    assert found.recipients == ("000.00.00.H27",)  # the malformed code is dropped
    assert found.code == "45/UBND-NN"
    assert found.promulgation_date is None  # 30 February
    assert "QCVN 102:2016" in found.reason_vi and ERROR.field in found.reason_vi
    ok = salvage(package_xml("2026/02/27"), ERROR)
    assert ok is not None and ok.promulgation_date == date(2026, 2, 27)


def test_salvage_reads_any_namespace_a_mime_part_and_broken_xml() -> None:
    assert salvage(package_xml(prefix=""), ERROR) is not None
    mime = (
        b"MIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=b1\r\n\r\n--b1\r\n"
        b"Content-Type: text/xml\r\n\r\n" + package_xml() + b"\r\n--b1--\r\n"
    )
    found = salvage(mime, ERROR)
    assert found is not None and found.sender == SENDER
    truncated = package_xml().replace(b"</edXML:edXMLHeader></edXML:edXMLEnvelope>", b"")
    assert salvage(truncated, ERROR) is not None  # recover mode


def test_salvage_reads_a_mime_package_whose_xml_part_is_named_edxml() -> None:
    """The usual ministry MIME: start="<edxml@…>" and its Content-ID, which are not the XML."""
    boundary = b"----=_Part_0_1794570932"
    head = (
        b'MIME-Version: 1.0\r\nContent-Type: multipart/related; type="application/xml"; '
        b'boundary="' + boundary + b'"; start="<edxml@btp.gov.vn>"\r\n\r\n--' + boundary
    )
    plain = (
        head + b"\r\nContent-Type: application/xml; charset=UTF-8\r\n"
        b"Content-ID: <edxml@btp.gov.vn>\r\n\r\n" + package_xml() + b"\r\n--" + boundary + b"--\r\n"
    )
    found = salvage(plain, ERROR)
    assert found is not None and found.sender == SENDER
    encoded = (
        head + b"\r\nContent-Type: application/xml; charset=UTF-8\r\n"
        b"Content-Transfer-Encoding: base64\r\nContent-ID: <edxml@btp.gov.vn>\r\n\r\n"
        + base64.encodebytes(package_xml())
        + b"\r\n--"
        + boundary
        + b"--\r\n"
    )
    found = salvage(encoded, ERROR)
    assert found is not None and found.document_id == "000.00.00.H09,2026/02/30,45/UBND-NN"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not xml at all",
        b"\x00\x01\x02",
        package_xml(sender="Bo Noi vu"),  # no usable sender code
        package_xml(document_id=""),  # nobody can match the answer
        package_xml(document_id="x" * 101),
        # A malformed status is not answered with a status.
        f'<edXMLEnvelope xmlns="{NS}"><edXMLHeader><Status><From><OrganId>{SENDER}'
        "</OrganId></From></Status></edXMLHeader></edXMLEnvelope>".encode(),
        # XXE and entity bombs are refused before lxml sees them.
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        + package_xml().split(b"?>", 1)[1],
        b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        + package_xml().split(b"?>", 1)[1].replace(b"45</", b"&lol2;</"),
        package_xml().decode().encode("utf-16"),  # NUL bytes: not the UTF-8 edXML is
    ],
)
def test_salvage_gives_up_on_what_cannot_be_answered(data: bytes) -> None:
    assert salvage(data, ERROR) is None


def test_salvage_refuses_oversized_bytes_before_parsing() -> None:
    big = package_xml() + b" " * (edxml.DEFAULT_LIMITS.max_package_bytes + 1)
    assert salvage(big, ERROR) is None


async def test_the_outside_directory_answers_none_until_fetched_then_keeps_its_list() -> None:
    def down() -> Unavailable:
        return Unavailable("document_axis", "list_agencies", "down")

    answers: list[object] = [down(), [Agency("000.00.00.G09", "Bộ Nội vụ")]]

    async def fetch() -> list[Agency]:
        answer = answers.pop(0) if answers else down()
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    outside = OutsideDirectory(fetch, refresh_seconds=0.01, retry_seconds=0.01)
    assert outside.knows("000.00.00.G09") is None  # never fetched: not checked
    stop = asyncio.Event()
    task = asyncio.create_task(outside.run(stop))
    for _ in range(200):
        if outside.knows("000.00.00.G09"):
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # later failures keep the list
    stop.set()
    await task
    assert outside.knows("000.00.00.G09") is True
    assert outside.knows("000.00.99.G99") is False
    assert outside.name_of("000.00.00.G09") == "Bộ Nội vụ"
