"""edXML codec: round trips, the schema, and hostile or malformed input from other systems."""

from __future__ import annotations

import dataclasses
import http.server
import re
import threading
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from lgsp.agency_code import agency_code_problem, is_agency_code
from services.documents.edxml import (
    ICT,
    Attachment,
    Business,
    BusinessDocType,
    Code,
    DocumentType,
    EdxmlError,
    Limits,
    MessageHeader,
    Organization,
    OtherInfo,
    Package,
    Priority,
    PromulgationInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    Status,
    StatusCode,
    TraceHeader,
    build_package,
    build_status,
    parse,
    parse_package,
    parse_status,
)
from services.documents.edxml.xmltree import schema as _schema
from tests.services.documents.edxml_samples import sample_package, sample_status

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"


def _replace_header(pkg: Package, **changes: Any) -> Package:
    return dataclasses.replace(pkg, header=dataclasses.replace(pkg.header, **changes))


# --- round trips -----------------------------------------------------------------------------


def test_package_round_trips_and_passes_the_schema() -> None:
    pkg = sample_package()
    data = build_package(pkg)
    assert _schema().validate(etree.fromstring(data))
    assert parse(data) == pkg
    assert parse_package(data).attachments[0].data == pkg.attachments[0].data


@pytest.mark.parametrize("code", list(StatusCode))
def test_status_round_trips_for_every_code(code: StatusCode) -> None:
    status = sample_status(code)
    data = build_status(status)
    assert parse_status(data) == status
    assert f"<edXML:StatusCode>{code.value}</edXML:StatusCode>".encode() in data


def test_uses_the_qcvn_namespace_and_element_names() -> None:
    root = etree.fromstring(build_package(sample_package()))
    assert root.tag == f"{{{NS}}}edXML"
    ns = {"e": NS}
    assert root.xpath("string(//e:MessageHeader/e:From/e:OrganId)", namespaces=ns) == (
        "000.00.00.H27"
    )
    assert root.xpath("string(//e:Code/e:CodeNotation)", namespaces=ns) == "QĐ-UBND"
    assert root.xpath("string(//e:PromulgationInfo/e:PromulgationDate)", namespaces=ns) == (
        "2025/07/14"
    )
    assert root.xpath("string(//e:Bussiness/e:BussinessDocType)", namespaces=ns) == "0"
    assert root.xpath("count(//e:AttachmentEncoded/e:Attachment)", namespaces=ns) == 1
    href = root.xpath(
        "//e:edXMLManifest/e:Reference/@xlink:href",
        namespaces={**ns, "xlink": "http://www.w3.org/1999/xlink"},
    )
    assert href == ["cid:qd-123.pdf"]


def test_timestamps_are_written_in_vietnam_time() -> None:
    utc = datetime(2025, 7, 14, 2, 30, tzinfo=UTC)
    status = dataclasses.replace(sample_status(), timestamp=utc)
    data = build_status(status)
    assert b"<edXML:Timestamp>2025/07/14 09:30:00</edXML:Timestamp>" in data
    assert parse_status(data).timestamp == utc


def test_status_is_not_a_package_and_back() -> None:
    with pytest.raises(EdxmlError) as err:
        parse_package(build_status(sample_status()))
    assert err.value.field == "MessageHeader"
    with pytest.raises(EdxmlError):
        parse_status(build_package(sample_package()))


def test_base64_wrapped_in_lines_is_accepted() -> None:
    pkg = sample_package(3000)
    data = build_package(pkg)
    payload = re.search(rb"<ContentTransferEncoded>([^<]+)<", data)
    assert payload is not None
    wrapped = b"\r\n".join(
        payload.group(1)[i : i + 76] for i in range(0, len(payload.group(1)), 76)
    )
    assert parse_package(data.replace(payload.group(1), wrapped)) == pkg


# --- property tests: generated packages round-trip -------------------------------------------

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")
    | st.sampled_from("\n\tàáạảãăắằẳẵặâấầẩẫậđêếềểễệôốồổỗộơớờởỡợưứừửữựỳýỵỷỹĐ"),
    max_size=40,
)
_required = _text.filter(lambda s: s != "").map(lambda s: s[:40])
_code_group = st.from_regex(r"[0-9A-Z]{1,5}", fullmatch=True)
_agency = st.lists(_code_group, min_size=1, max_size=5).map(".".join).filter(is_agency_code)
_dates = st.dates(min_value=date(1945, 9, 2), max_value=date(2099, 12, 31))
_stamps = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(ICT)
).map(lambda d: d.replace(microsecond=0))
_orgs = st.builds(
    Organization,
    organ_id=_agency,
    organ_name=_text,
    organization_in_charge=_text,
    organ_add=_text,
    email=_text,
    telephone=_text,
    fax=_text,
    website=_text,
)
_rf = st.builds(
    ResponseFor, organ_id=_agency, code=_required, promulgation_date=_dates, document_id=_text
)
_staff = st.none() | st.builds(StaffInfo, department=_text, staff=_text, mobile=_text, email=_text)
_packages = st.builds(
    Package,
    header=st.builds(
        MessageHeader,
        from_=_orgs,
        to=st.lists(_orgs, min_size=1, max_size=3).map(tuple),
        code=st.builds(
            Code, code_number=st.from_regex(r"[0-9]{1,6}", fullmatch=True), code_notation=_required
        ),
        promulgation_info=st.builds(PromulgationInfo, place=_text, promulgation_date=_dates),
        document_type=st.builds(DocumentType, type=st.integers(0, 999), type_name=_required),
        subject=_text,
        signer_info=st.builds(SignerInfo, full_name=_required, competence=_text, position=_text),
        content=_text,
        due_date=st.none() | _dates,
        to_places=st.lists(_text, max_size=3).map(tuple),
        other_info=st.builds(
            OtherInfo,
            priority=st.sampled_from(Priority),
            sphere_of_promulgation=_text,
            typer_notation=_text,
            promulgation_amount=st.none() | st.integers(0, 1000),
            page_amount=st.none() | st.integers(0, 1000),
            appendixes=st.lists(_text, max_size=2).map(tuple),
        ),
        steering_type=st.integers(0, 2),
        response_for=st.lists(_rf, max_size=2).map(tuple),
        document_id=_text,
    ),
    trace_headers=st.lists(
        st.builds(TraceHeader, organ_id=_agency, timestamp=_stamps), max_size=3
    ).map(tuple),
    business=st.builds(
        Business,
        doc_type=st.sampled_from(BusinessDocType),
        reason=_text,
        paper=st.booleans(),
        staff_info=_staff,
    ),
    attachments=st.lists(
        st.builds(
            Attachment,
            content_id=st.from_regex(r"[A-Za-z0-9._-]{1,20}", fullmatch=True),
            attachment_name=_required,
            content_type=st.sampled_from(["application/pdf", "text/plain", "image/png"]),
            data=st.binary(max_size=300),
            description=_text,
        ),
        max_size=3,
        unique_by=lambda a: a.content_id,
    ).map(tuple),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_packages)
def test_generated_packages_round_trip(pkg: Package) -> None:
    assert parse(build_package(pkg)) == pkg


@settings(max_examples=60, deadline=None)
@given(
    st.builds(
        Status,
        response_for=_rf,
        from_=_orgs,
        status_code=st.sampled_from(StatusCode),
        timestamp=_stamps,
        description=_text,
        staff_info=_staff,
        trace_headers=st.lists(
            st.builds(TraceHeader, organ_id=_agency, timestamp=_stamps), max_size=2
        ).map(tuple),
    )
)
def test_generated_statuses_round_trip(status: Status) -> None:
    assert parse(build_status(status)) == status


# --- fuzz: random and mutated bytes only ever raise EdxmlError --------------------------------

_VALID = build_package(sample_package(600))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_raise_only_edxml_error(data: bytes) -> None:
    try:
        parse(data)
    except EdxmlError:
        pass


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 8), st.binary(max_size=12)),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_packages_raise_only_edxml_error(edits: list[tuple[int, int, bytes]]) -> None:
    data = bytearray(_VALID)
    for pos, cut, insert in edits:
        data[pos : pos + cut] = insert
    try:
        result = parse(bytes(data))
    except EdxmlError:
        return
    # Whatever is accepted must be something we could send on unchanged.
    assert parse(build_package(result) if isinstance(result, Package) else build_status(result))


_TAGS = [t.encode() for t in re.findall(r"<(edXML:\w+|\w+)[ >]", _VALID.decode())]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_TAGS), min_size=1, max_size=3), st.sampled_from(["drop", "dup"]))
def test_structural_mutations_raise_only_edxml_error(tags: list[bytes], how: str) -> None:
    data = _VALID
    for tag in tags:
        m = re.search(rb"<" + tag + rb"[ >].*?</" + tag + rb">", data, re.S)
        if m is None:
            continue
        data = data.replace(m.group(0), b"" if how == "drop" else m.group(0) * 2, 1)
    try:
        parse(data)
    except EdxmlError:
        pass


# --- hostile and malformed input --------------------------------------------------------------


def test_xxe_file_is_refused_and_nothing_leaks() -> None:
    evil = (
        b'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<edXML xmlns="' + NS.encode() + b'"><edXMLEnvelope><edXMLHeader><MessageHeader>'
        b"<Subject>&x;</Subject></MessageHeader></edXMLHeader></edXMLEnvelope></edXML>"
    )
    with pytest.raises(EdxmlError) as err:
        parse(evil)
    assert err.value.field == "document"
    assert "DOCTYPE" in err.value.reason
    assert "root:" not in str(err.value)


def test_billion_laughs_is_refused_quickly() -> None:
    lol = b"".join(
        b'<!ENTITY l%d "&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;">'
        % ((i,) + (i - 1,) * 10)
        for i in range(1, 10)
    )
    evil = (
        b'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY l0 "lol">' + lol + b"]>"
        b'<edXML xmlns="' + NS.encode() + b'">&l9;</edXML>'
    )
    with pytest.raises(EdxmlError, match="DOCTYPE"):
        parse(evil)


def test_external_dtd_and_network_are_refused() -> None:
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'<!ENTITY x "pwned">')

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/evil.dtd".encode()
        evil = b'<?xml version="1.0"?><!DOCTYPE edXML SYSTEM "' + url + b'"><edXML/>'
        with pytest.raises(EdxmlError, match="DOCTYPE"):
            parse(evil)
        # Even an XInclude-style or schemaLocation reference is never fetched.
        sneaky = _VALID.replace(
            b"<edXML ",
            b'<edXML xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            b'xsi:schemaLocation="' + NS.encode() + b" " + url + b'" ',
            1,
        )
        parse(sneaky)
    finally:
        server.shutdown()
        server.server_close()
    assert hits == []


def test_utf16_doctype_cannot_slip_past_the_byte_scan() -> None:
    evil = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><edXML/>'
    with pytest.raises(EdxmlError) as err:
        parse(evil.encode("utf-16"))
    assert err.value.field == "document"


def test_oversized_package_is_refused_before_parsing() -> None:
    with pytest.raises(EdxmlError, match="over the 1000-byte limit") as err:
        parse(_VALID, Limits(max_package_bytes=1000))
    assert err.value.field == "document"


def test_oversized_attachment_is_refused_naming_it() -> None:
    pkg = sample_package(5000)
    two = dataclasses.replace(
        pkg,
        attachments=(
            pkg.attachments[0],
            dataclasses.replace(pkg.attachments[0], content_id="b", data=b"x" * 9000),
        ),
    )
    data = build_package(two)
    with pytest.raises(EdxmlError) as err:
        parse(data, Limits(max_attachment_bytes=8000))
    assert err.value.field == "AttachmentEncoded/Attachment[2]/ContentTransferEncoded"
    with pytest.raises(EdxmlError) as err:
        parse(data, Limits(max_total_attachment_bytes=12000))
    assert err.value.field == "AttachmentEncoded/Attachment[2]/ContentTransferEncoded"
    assert "together" in err.value.reason
    with pytest.raises(EdxmlError) as err:
        build_package(two, Limits(max_attachment_bytes=8000))
    assert err.value.field == "AttachmentEncoded/Attachment[2]/ContentTransferEncoded"
    with pytest.raises(EdxmlError, match="limit of 1"):
        parse(data, Limits(max_attachments=1))


def test_limits_cannot_exceed_what_libxml2_parses() -> None:
    with pytest.raises(ValueError):
        Limits(max_attachment_bytes=8 * 1024 * 1024)


def _drop(data: bytes, tag: bytes) -> bytes:
    out = re.sub(rb"<edXML:" + tag + rb">.*?</edXML:" + tag + rb">", b"", data, count=1, flags=re.S)
    assert out != data
    return out


def test_missing_code_names_the_field() -> None:
    with pytest.raises(EdxmlError) as err:
        parse(_drop(_VALID, b"Code"))
    assert err.value.field == "MessageHeader/Code"


def test_missing_code_notation_names_the_field() -> None:
    with pytest.raises(EdxmlError) as err:
        parse(_drop(_VALID, b"CodeNotation"))
    assert err.value.field == "MessageHeader/Code/CodeNotation"


def test_missing_subject_and_signer_are_named() -> None:
    with pytest.raises(EdxmlError) as err:
        parse(_drop(_VALID, b"Subject"))
    assert err.value.field == "MessageHeader/Subject"
    with pytest.raises(EdxmlError) as err:
        parse(_drop(_VALID, b"SignerInfo"))
    assert err.value.field == "MessageHeader/SignerInfo"


@pytest.mark.parametrize(
    "bad", ["000.00.00.h30", "000..00.H27", ".H27", "H27.", "Ủ.01", "1" * 36, "000 00", ""]
)
def test_wrong_agency_code_is_refused_on_parse_and_build(bad: str) -> None:
    data = _VALID.replace(b"<edXML:OrganId>000.01.30.H27<", f"<edXML:OrganId>{bad}<".encode(), 1)
    with pytest.raises(EdxmlError) as err:
        parse(data)
    assert err.value.field == "MessageHeader/To[1]/OrganId"
    pkg = sample_package()
    to = (dataclasses.replace(pkg.header.to[0], organ_id=bad), *pkg.header.to[1:])
    with pytest.raises(EdxmlError) as err:
        build_package(_replace_header(pkg, to=to))
    assert err.value.field == "MessageHeader/To[1]/OrganId"
    assert agency_code_problem(bad) is not None


def test_agency_code_rule() -> None:
    for good in ["000.00.00.H27", "G22", "000.01.30.H27", "H27.1.AB", "A" * 35]:
        assert is_agency_code(good), good


def test_impossible_date_is_refused() -> None:
    data = _VALID.replace(
        b"2025/07/14</edXML:PromulgationDate>", b"2025/02/30</edXML:PromulgationDate>"
    )
    with pytest.raises(EdxmlError) as err:
        parse(data)
    assert err.value.field == "MessageHeader/PromulgationInfo/PromulgationDate"


def test_bad_base64_and_duplicate_content_ids_are_refused() -> None:
    data = re.sub(rb"<ContentTransferEncoded>[^<]{4}", b"<ContentTransferEncoded>!!!!", _VALID)
    with pytest.raises(EdxmlError) as err:
        parse(data)
    assert err.value.field == "AttachmentEncoded/Attachment/ContentTransferEncoded"
    pkg = sample_package()
    with pytest.raises(EdxmlError, match="used twice"):
        build_package(dataclasses.replace(pkg, attachments=pkg.attachments * 2))


def test_manifest_must_match_the_attachments() -> None:
    data = _VALID.replace(b'xlink:href="cid:qd-123.pdf"', b'xlink:href="cid:other"').replace(
        b"<edXML:ContentId>cid:qd-123.pdf<", b"<edXML:ContentId>cid:other<"
    )
    with pytest.raises(EdxmlError) as err:
        parse(data)
    assert err.value.field == "edXMLManifest"


def test_wrong_root_and_wrong_namespace_and_garbage() -> None:
    for data, field in [
        (b"<html/>", "edXML"),
        (_VALID.replace(NS.encode(), b"http://example.com/x"), "edXML"),
        (b"not xml at all", "document"),
        (b"", "document"),
        (_VALID[: len(_VALID) // 2], "document"),
    ]:
        with pytest.raises(EdxmlError) as err:
            parse(data)
        assert err.value.field == field


def test_builder_refuses_control_characters_naming_the_field() -> None:
    with pytest.raises(EdxmlError) as err:
        build_package(_replace_header(sample_package(), subject="a\x07b"))
    assert err.value.field == "MessageHeader/Subject"


def test_builder_refuses_naive_timestamps_and_empty_recipients() -> None:
    pkg = sample_package()
    with pytest.raises(EdxmlError) as err:
        build_package(
            dataclasses.replace(
                pkg, trace_headers=(TraceHeader("000.00.00.H27", datetime(2025, 1, 1)),)
            )
        )
    assert err.value.field == "TraceHeaderList/TraceHeader[1]/Timestamp"
    with pytest.raises(EdxmlError) as err:
        build_package(_replace_header(pkg, to=()))
    assert err.value.field == "MessageHeader/To"


def test_builder_refuses_what_the_schema_refuses() -> None:
    with pytest.raises(EdxmlError) as err:
        build_package(_replace_header(sample_package(), subject="x" * 5000))
    assert err.value.field == "MessageHeader/Subject"
