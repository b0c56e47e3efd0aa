"""Documents across the province's border, over the national document axis: the real mock
(`national.document_axis`, its own process) and the documents service with [documents]
national_axis on. What an agency outside the province does is done here with the axis
client (`lgsp.connectors.document_axis`), as that agency's own system would."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest

from lgsp.api.documents.v1 import documents_pb2 as pb
from lgsp.connectors.document_axis import Agency, AxisPackage, DocumentAxisClient
from lgsp.workdays import PROVINCE_TZ
from services.documents import edxml
from services.documents.national_axis import AxisExchange
from tests.national.mockproc import API_KEY, MockProcess

from .workflow_support import (
    STP,
    UBND,
    Env,
    draft,
    eventually,
    running_env,
    to_signed,
)

MINISTRY = ("000.00.00.G09", "Bộ Nội vụ")
OTHER_PROVINCE = ("000.00.00.H41", "Ủy ban nhân dân tỉnh Nghệ An")


@pytest.fixture
def axis_mock(tmp_path: Path) -> Iterator[MockProcess]:
    (tmp_path / "axis").mkdir()
    mock = MockProcess("document_axis", tmp_path / "axis").start()
    try:
        yield mock
    finally:
        mock.stop()


def _settings(mock: MockProcess, poll_seconds: float) -> dict[str, str]:
    return {
        "LGSP_DOCUMENTS_NATIONAL_AXIS": "true",
        "LGSP_DOCUMENTS_AXIS_POLL_SECONDS": str(poll_seconds),
        "LGSP_DOCUMENTS_AXIS_IDLE_POLL_SECONDS": str(poll_seconds),
        "LGSP_NATIONAL_DOCUMENT_AXIS_PORT": str(mock.port),
        "LGSP_NATIONAL_API_KEY": API_KEY,
    }


@pytest.fixture
async def env(tmp_path: Path, axis_mock: MockProcess) -> AsyncIterator[Env]:
    async with running_env(tmp_path / "documents", _settings(axis_mock, 0.2)) as env:
        yield env


@pytest.fixture
async def axis(axis_mock: MockProcess) -> AsyncIterator[DocumentAxisClient]:
    """The axis as an agency outside the province reaches it."""
    client = DocumentAxisClient(axis_mock.url, API_KEY)
    try:
        yield client
    finally:
        await client.aclose()


async def mailbox(axis: DocumentAxisClient, code: str) -> list[AxisPackage]:
    return await axis.poll(code, 100)


async def send_out(env: Env, recipients: list[pb.Recipient]) -> pb.Document:
    signed = await to_signed(env, draft(recipients=recipients))
    issued = (
        await env.as_("ubnd-vt").IssueDocument(
            pb.IssueDocumentRequest(document_id=signed.id, etag=signed.etag)
        )
    ).document
    return (
        await env.as_("ubnd-vt").SendDocument(
            pb.SendDocumentRequest(document_id=issued.id, etag=issued.etag)
        )
    ).document


async def incoming(env: Env, agency: str, user: str) -> list[pb.Document]:
    page = await env.as_(user).ListDocuments(
        pb.ListDocumentsRequest(agency_code=agency, direction=pb.DIRECTION_INCOMING)
    )
    return list(page.documents)


def outside_package(
    subject: str = "Về việc phối hợp quản lý tài nguyên rừng giáp ranh",
    to: tuple[tuple[str, str], ...] = ((UBND, "Ủy ban nhân dân tỉnh Hà Tĩnh"),),
) -> bytes:
    header = edxml.MessageHeader(
        # As senders often write it; the axis's directory names the code in full.
        from_=edxml.Organization(
            organ_id=OTHER_PROVINCE[0],
            organ_name="UBND Nghệ An",
            organization_in_charge="Chính phủ",
        ),
        to=tuple(edxml.Organization(organ_id=code, organ_name=name) for code, name in to),
        code=edxml.Code(code_number="45", code_notation="UBND-NN"),
        promulgation_info=edxml.PromulgationInfo(place="Nghệ An", promulgation_date=date.today()),
        document_type=edxml.DocumentType(type=2, type_name="Công văn"),
        subject=subject,
        content="Đề nghị Ủy ban nhân dân tỉnh Hà Tĩnh phối hợp tuần tra vùng giáp ranh.",
        signer_info=edxml.SignerInfo(
            full_name="Lê Hồng Vinh", competence="KT. CHỦ TỊCH", position="PHÓ CHỦ TỊCH"
        ),
    )
    header = replace(
        header, document_id=f"{header.conventional_document_id()}-{uuid.uuid4().hex[:6]}"
    )
    return edxml.build_package(
        edxml.Package(
            header=header,
            trace_headers=(
                edxml.TraceHeader(
                    organ_id=OTHER_PROVINCE[0],
                    timestamp=datetime.now(PROVINCE_TZ).replace(microsecond=0),
                ),
            ),
        )
    )


def axis_exchange(env: Env) -> AxisExchange:
    exchange = env.axis
    assert isinstance(exchange, AxisExchange)
    return exchange


async def test_a_document_for_a_ministry_goes_over_the_axis_and_its_status_comes_back(
    env: Env, axis: DocumentAxisClient
) -> None:
    sent = await send_out(
        env,
        [
            pb.Recipient(agency_code=STP, name="Sở Tư pháp", kind=pb.RECIPIENT_KIND_MAIN),
            pb.Recipient(agency_code=MINISTRY[0], name=MINISTRY[1], kind=pb.RECIPIENT_KIND_MAIN),
        ],
    )
    [package] = await eventually(lambda: mailbox(axis, MINISTRY[0]))
    assert package.kind == "document" and package.sender == UBND
    parsed = edxml.parse(package.body)
    assert isinstance(parsed, edxml.Package)
    assert parsed.header.subject == sent.subject
    assert {o.organ_id for o in parsed.header.to} == {STP, MINISTRY[0]}

    # The province's own recipient got it once, over the bus; the axis's copy in its mailbox
    # (the axis delivers to every To) is acknowledged and dropped.
    [arrived] = await eventually(lambda: incoming(env, STP, "stp-vt"))
    assert arrived.number_notation == sent.number_notation
    await eventually(lambda: _empty(axis, STP))
    assert len(await incoming(env, STP, "stp-vt")) == 1

    # The ministry accepts it (03): the status travels back over the axis.
    status = edxml.build_status(
        edxml.Status(
            response_for=edxml.ResponseFor(
                organ_id=UBND,
                code=sent.number_notation,
                promulgation_date=parsed.header.promulgation_info.promulgation_date,
                document_id=parsed.header.document_id,
            ),
            from_=edxml.Organization(organ_id=MINISTRY[0], organ_name=MINISTRY[1]),
            status_code=edxml.StatusCode.ACCEPTED,
            timestamp=datetime.now(PROVINCE_TZ).replace(microsecond=0),
            description="Đã tiếp nhận",
        )
    )
    await axis.send_status(status)
    await axis.ack(MINISTRY[0], package.package_id)

    async def accepted() -> bool:
        doc = (await env.as_("ubnd-vt").GetDocument(pb.GetDocumentRequest(id=sent.id))).document
        ministry = next(r for r in doc.recipients if r.agency_code == MINISTRY[0])
        return ministry.last_incoming_status == pb.INCOMING_STATUS_ACCEPTED

    await eventually(accepted)


async def _empty(axis: DocumentAxisClient, code: str) -> bool:
    return await mailbox(axis, code) == []


async def test_a_package_from_another_province_is_registered_once_and_01_goes_back(
    tmp_path: Path, axis_mock: MockProcess, axis: DocumentAxisClient
) -> None:
    # Polled by hand here (the background poll waits an hour after its first round), so the
    # crash between the import's commit and the ack can be replayed exactly.
    async with running_env(tmp_path / "documents", _settings(axis_mock, 3600)) as env:
        exchange = axis_exchange(env)
        await eventually(lambda: _opened(axis, UBND))  # the first round opened the mailboxes
        sent = await axis.send_package(outside_package())
        [waiting] = await mailbox(axis, UBND)
        # Imported, then the process "dies" before the ack: the next poll sees it again.
        assert await asyncio.to_thread(exchange._import, UBND, waiting)
        env.runtime.after_commit()
        assert await exchange.poll_once(UBND) == 0  # seen: not imported twice
        assert await mailbox(axis, UBND) == []  # but acknowledged now

        [doc] = await eventually(lambda: incoming(env, UBND, "ubnd-vt"))
        assert doc.sender_agency_code == OTHER_PROVINCE[0]
        assert doc.incoming_status == pb.INCOMING_STATUS_ARRIVED
        assert doc.number_notation == "45/UBND-NN"

        async def reported() -> list[str]:
            return [s.status_code for s in await axis.statuses(sent.package_id)]

        assert await eventually(reported) == ["01"]
        assert len(await incoming(env, UBND, "ubnd-vt")) == 1


async def test_a_package_for_two_agencies_of_the_province_reaches_both(
    tmp_path: Path, axis_mock: MockProcess, axis: DocumentAxisClient
) -> None:
    """The axis delivers one package (one package id) to each To's mailbox: each agency
    registers its own copy, and each answers 01."""
    async with running_env(tmp_path / "documents", _settings(axis_mock, 3600)) as env:
        exchange = axis_exchange(env)
        await eventually(lambda: _opened(axis, STP))
        sent = await axis.send_package(
            outside_package(to=((UBND, "Ủy ban nhân dân tỉnh Hà Tĩnh"), (STP, "Sở Tư pháp")))
        )
        assert await exchange.poll_round() == 2
        env.runtime.after_commit()
        [to_ubnd] = await eventually(lambda: incoming(env, UBND, "ubnd-vt"))
        [to_stp] = await eventually(lambda: incoming(env, STP, "stp-vt"))
        assert to_ubnd.number_notation == to_stp.number_notation == "45/UBND-NN"

        async def reporters() -> list[str]:
            found = sorted(s.reporter for s in await axis.statuses(sent.package_id))
            return found if len(found) == 2 else []

        assert await eventually(reporters) == sorted([UBND, STP])


async def _opened(axis: DocumentAxisClient, code: str) -> bool:
    return code in {a.code for a in await axis.list_agencies()}


async def test_an_axis_outage_delays_the_document_and_loses_nothing(
    env: Env, axis_mock: MockProcess, axis: DocumentAxisClient
) -> None:
    await eventually(lambda: _opened(axis, UBND))
    axis_mock.faults(down=True)
    sent = await send_out(
        env,
        [pb.Recipient(agency_code=MINISTRY[0], name=MINISTRY[1], kind=pb.RECIPIENT_KIND_MAIN)],
    )
    await asyncio.sleep(1.5)  # the relay keeps trying against a down axis
    axis_mock.faults()
    [package] = await eventually(lambda: mailbox(axis, MINISTRY[0]), within=40)
    parsed = edxml.parse(package.body)
    assert isinstance(parsed, edxml.Package) and parsed.header.subject == sent.subject
    await asyncio.sleep(0.5)
    assert len(await mailbox(axis, MINISTRY[0])) == 1  # delivered once


async def test_a_package_our_schema_refuses_is_answered_with_02_and_the_next_one_arrives(
    env: Env, axis: DocumentAxisClient
) -> None:
    await eventually(lambda: _opened(axis, UBND))
    # Routable for the axis (its few header fields are there), not a valid edXML for us.
    date_element = f"PromulgationDate>{date.today():%Y/%m/%d}<".encode()
    good_bytes = outside_package()
    bad = good_bytes.replace(date_element, b"PromulgationDate>2026/02/30<", 1)
    assert bad != good_bytes
    refused = await axis.send_package(bad)
    good = await axis.send_package(outside_package("Về việc trao đổi thông tin dân cư"))
    [doc] = await eventually(lambda: incoming(env, UBND, "ubnd-vt"))
    assert doc.subject == "Về việc trao đổi thông tin dân cư"
    # The issuer as the axis's directory names its code; the body in charge kept apart.
    listed = {a.code: a.name for a in await axis.list_agencies()}
    assert doc.sender_agency_name == listed[OTHER_PROVINCE[0]] != "UBND Nghệ An"
    assert doc.sender_organization_in_charge == "Chính phủ"
    await eventually(lambda: _empty(axis, UBND))  # both acknowledged: nothing stuck

    async def reported(package_id: str) -> list[str]:
        return [s.status_code for s in await axis.statuses(package_id)]

    assert await eventually(lambda: reported(refused.package_id)) == ["02"]
    assert await eventually(lambda: reported(good.package_id)) == ["01"]
    # The sender's system reads why, in Vietnamese, in its mailbox.
    statuses = [p for p in await mailbox(axis, OTHER_PROVINCE[0]) if p.status_code == "02"]
    answer = edxml.parse(statuses[0].body)
    assert isinstance(answer, edxml.Status)
    assert answer.response_for.document_id == refused.message_id
    assert answer.description.startswith("Gói tin không đúng quy chuẩn QCVN 102:2016")
    assert "PromulgationDate" in answer.description


async def test_an_unknown_recipient_fails_alone_and_the_others_get_the_package(
    env: Env, axis: DocumentAxisClient
) -> None:
    nowhere = "000.00.99.G99"  # a well-formed code no mailbox answers to
    # Listed when the draft was made (the axis's list changed since): the draft passes.
    outside = axis_exchange(env).transport.outside
    await eventually(lambda: _loaded(outside))
    outside.load([*await axis.list_agencies(), Agency(nowhere, "Cơ quan đã giải thể")])
    sent = await send_out(
        env,
        [
            pb.Recipient(agency_code=STP, name="Sở Tư pháp", kind=pb.RECIPIENT_KIND_MAIN),
            pb.Recipient(agency_code=MINISTRY[0], name=MINISTRY[1], kind=pb.RECIPIENT_KIND_MAIN),
            pb.Recipient(agency_code=nowhere, name="Cơ quan không có", kind=pb.RECIPIENT_KIND_MAIN),
        ],
    )

    async def failed() -> pb.Recipient | None:
        doc = (await env.as_("ubnd-vt").GetDocument(pb.GetDocumentRequest(id=sent.id))).document
        r = next(r for r in doc.recipients if r.agency_code == nowhere)
        return r if r.delivery_status == pb.DELIVERY_STATUS_FAILED else None

    recipient = await eventually(failed)
    assert recipient.error.startswith("Trục liên thông văn bản quốc gia từ chối")
    # The ministry got the package, and its recipient line did not fail with the other.
    [package] = await eventually(lambda: mailbox(axis, MINISTRY[0]))
    assert package.sender == UBND
    doc = (await env.as_("ubnd-vt").GetDocument(pb.GetDocumentRequest(id=sent.id))).document
    ministry = next(r for r in doc.recipients if r.agency_code == MINISTRY[0])
    assert ministry.delivery_status == pb.DELIVERY_STATUS_SENT and not ministry.error
    [arrived] = await eventually(lambda: incoming(env, STP, "stp-vt"))
    assert arrived.number_notation == sent.number_notation


async def _loaded(outside: Any) -> bool:
    return outside.knows(MINISTRY[0]) is not None


async def test_an_outside_code_the_axis_does_not_list_is_refused_at_draft(env: Env) -> None:
    await eventually(lambda: _loaded(axis_exchange(env).transport.outside))
    recipients = [
        pb.Recipient(agency_code=MINISTRY[0], name=MINISTRY[1]),
        pb.Recipient(agency_code="000.00.99.G99", name="Cơ quan không có"),
    ]
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await env.as_("ubnd-cv").CreateDraft(
            pb.CreateDraftRequest(document=draft(recipients=recipients))
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = e.value.details() or ""
    assert "document.recipients[1].agency_code" in details and "000.00.99.G99" in details
    ok = await env.as_("ubnd-cv").CreateDraft(
        pb.CreateDraftRequest(document=draft(recipients=recipients[:1]))
    )
    assert ok.document.recipients[0].agency_code == MINISTRY[0]


async def test_a_ministry_refusing_a_recall_with_16_is_shown_to_the_sender(
    env: Env, axis: DocumentAxisClient
) -> None:
    sent = await send_out(
        env,
        [pb.Recipient(agency_code=MINISTRY[0], name=MINISTRY[1], kind=pb.RECIPIENT_KIND_MAIN)],
    )
    [package] = await eventually(lambda: mailbox(axis, MINISTRY[0]))
    await axis.ack(MINISTRY[0], package.package_id)
    original = edxml.parse(package.body)
    assert isinstance(original, edxml.Package)
    await env.as_("ubnd-vt").RecallDocument(
        pb.RecallDocumentRequest(document_id=sent.id, etag=sent.etag, reason="Ban hành nhầm.")
    )
    [recall] = await eventually(lambda: mailbox(axis, MINISTRY[0]))
    parsed = edxml.parse(recall.body)
    assert isinstance(parsed, edxml.Package)
    assert parsed.business.doc_type == edxml.BusinessDocType.RECALL
    await axis.send_status(
        edxml.build_status(
            edxml.Status(
                response_for=edxml.ResponseFor(
                    organ_id=UBND,
                    code=sent.number_notation,
                    promulgation_date=original.header.promulgation_info.promulgation_date,
                    document_id=original.header.document_id,
                ),
                from_=edxml.Organization(organ_id=MINISTRY[0], organ_name=MINISTRY[1]),
                status_code=edxml.StatusCode.RECALL_REFUSED,
                timestamp=datetime.now(PROVINCE_TZ).replace(microsecond=0),
                description="Văn bản đã được xử lý xong; không thể thu hồi.",
            )
        )
    )

    async def refused() -> bool:
        doc = (await env.as_("ubnd-vt").GetDocument(pb.GetDocumentRequest(id=sent.id))).document
        ministry = next(r for r in doc.recipients if r.agency_code == MINISTRY[0])
        return ministry.last_incoming_status == pb.INCOMING_STATUS_RECALL_REFUSED

    await eventually(refused)


async def test_recipients_outside_the_province_need_a_code_and_a_name(env: Env) -> None:
    for recipient, field in [
        (
            pb.Recipient(agency_code="bo-noi-vu", name="Bộ Nội vụ"),
            "document.recipients[0].agency_code",
        ),
        (pb.Recipient(agency_code=MINISTRY[0], name="  "), "document.recipients[0].name"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await env.as_("ubnd-cv").CreateDraft(
                pb.CreateDraftRequest(document=draft(recipients=[recipient]))
            )
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in (e.value.details() or "")


async def test_an_idle_poll_leaves_no_span_and_a_package_gets_a_trace_of_its_own(
    tmp_path: Path, axis_mock: MockProcess, axis: DocumentAxisClient
) -> None:
    """Idle rounds filled the console's trace store (196 of the 200 newest traces)."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from lgsp.telemetry import setup_telemetry

    exporter = InMemorySpanExporter()
    setup_telemetry("documents", exporter=exporter)
    async with running_env(tmp_path / "documents", _settings(axis_mock, 3600)) as env:
        exchange = axis_exchange(env)
        await eventually(lambda: _opened(axis, UBND))

        def axis_spans() -> list[Any]:
            return [
                s
                for s in exporter.get_finished_spans()
                if s.name.startswith(("document_axis.", "national axis"))
                or axis_mock.url in str((s.attributes or {}).get("url.full", ""))
            ]

        exporter.clear()
        assert await exchange.poll_once(UBND) == 0
        assert axis_spans() == []  # nothing found: no span

        await axis.send_package(outside_package())
        assert await exchange.poll_once(UBND) == 1
        spans = axis_spans()
        [root] = [s for s in spans if s.name == "national axis package import"]
        assert root.parent is None  # a trace of its own, not the poller's
        assert any(
            s.context.trace_id == root.context.trace_id and s.name == "document_axis.ack"
            for s in spans
        ), [s.name for s in spans]
