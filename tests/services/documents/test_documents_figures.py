"""The figures the province reports, per agency, from stored facts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import grpc
import pytest

from lgsp.api.documents.v1 import documents_pb2 as pb
from lgsp.workdays import local_date
from services.documents.domain.figures import IncomingFact, OutgoingFact, compute_figures
from tests.support.pdf import minimal_pdf

from .workflow_support import (  # noqa: F401
    SNV,
    STP,
    UBND,
    Env,
    draft,
    env_fixture,
    eventually,
    to_signed,
    to_signed_digitally,
)


def test_compute_figures_from_facts() -> None:
    t0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    f = compute_figures(
        STP,
        [
            OutgoingFact(STP, date(2026, 3, 2), True, True),
            OutgoingFact(STP, date(2026, 3, 3), False, False),
        ],
        [
            IncomingFact(STP, t0, True, date(2026, 3, 5), t0 + timedelta(days=2), False),  # on time
            IncomingFact(STP, t0, False, date(2026, 3, 3), t0 + timedelta(days=4), False),  # late
            IncomingFact(STP, t0, True, date(2026, 3, 4), None, True),  # open past due: overdue
            IncomingFact(STP, t0, True, None, None, True),  # no deadline
        ],
        tasks_overdue=3,
        today=date(2026, 3, 10),
        local_date=local_date,
    )
    assert (f.outgoing_issued, f.outgoing_electronic, f.outgoing_digitally_signed) == (2, 1, 1)
    assert (f.incoming_arrived, f.incoming_electronic) == (4, 3)
    assert (f.incoming_done_on_time, f.incoming_late, f.incoming_overdue, f.tasks_overdue) == (
        1,
        2,
        1,
        3,
    )
    assert f.electronic_share == pytest.approx(4 / 6)
    assert f.digitally_signed_share == 0.5
    assert f.average_handling_seconds == pytest.approx(3 * 86400)


async def test_figures_over_grpc(env: Env) -> None:
    base = datetime.now(UTC)
    clock = {"now": base}
    env.app.clock = lambda: clock["now"]

    # UBND: one document signed digitally and sent electronically, one on paper signature.
    # The digital one is a real PAdES signature made by SignDocument with the DevCA.
    d = await to_signed_digitally(env, minimal_pdf())
    assert d.digitally_signed
    d = (
        await env.as_("ubnd-vt").IssueDocument(
            pb.IssueDocumentRequest(document_id=d.id, etag=d.etag)
        )
    ).document
    await env.as_("ubnd-vt").SendDocument(pb.SendDocumentRequest(document_id=d.id, etag=d.etag))
    paper = await to_signed(env, draft(confidentiality=pb.CONFIDENTIALITY_SECRET))
    await env.as_("ubnd-vt").IssueDocument(
        pb.IssueDocumentRequest(document_id=paper.id, etag=paper.etag)
    )

    # STP: the electronic arrival is done two days later; a paper one is overdue.
    async def arrived() -> list[pb.Document]:
        page = await env.as_("stp-vt").ListDocuments(
            pb.ListDocumentsRequest(agency_code=STP, direction=pb.DIRECTION_INCOMING)
        )
        return list(page.documents)

    inc = (await eventually(arrived))[0]
    inc = (
        await env.as_("stp-vt").AcceptDocument(
            pb.AcceptDocumentRequest(document_id=inc.id, etag=inc.etag)
        )
    ).document
    inc = (
        await env.as_("stp-ld").AssignDocument(
            pb.AssignDocumentRequest(document_id=inc.id, etag=inc.etag, handler_user_id="stp-cv")
        )
    ).document
    inc = (
        await env.as_("stp-cv").StartProcessing(
            pb.StartProcessingRequest(document_id=inc.id, etag=inc.etag)
        )
    ).document
    clock["now"] = base + timedelta(days=2)
    await env.as_("stp-cv").CompleteDocument(
        pb.CompleteDocumentRequest(document_id=inc.id, etag=inc.etag, result_note="Xong")
    )
    clock["now"] = base
    p = (
        await env.as_("stp-vt").RegisterIncoming(
            pb.RegisterIncomingRequest(
                document=pb.Document(
                    agency_code=STP,
                    document_type_code="CV",
                    number_notation="15/UBND-VX",
                    subject="Về việc báo cáo số liệu",
                    sender_agency_name="UBND xã Cẩm Xuyên",
                )
            )
        )
    ).document
    p = (
        await env.as_("stp-vt").AcceptDocument(
            pb.AcceptDocumentRequest(document_id=p.id, etag=p.etag)
        )
    ).document
    yesterday = (local_date(base) - timedelta(days=1)).isoformat()
    await env.as_("stp-ld").AssignDocument(
        pb.AssignDocumentRequest(
            document_id=p.id, etag=p.etag, handler_user_id="stp-cv", due_date=yesterday
        )
    )

    stp = (
        await env.as_("stp-ld").GetDocumentFigures(pb.GetDocumentFiguresRequest(agency_code=STP))
    ).total
    assert (stp.incoming_arrived, stp.incoming_electronic) == (2, 1)
    assert stp.electronic_share == 0.5
    assert stp.incoming_overdue == 1 and stp.incoming_late == 1
    assert stp.average_handling_seconds == pytest.approx(2 * 86400, rel=1e-3)

    ubnd = await env.as_("ubnd-admin").GetDocumentFigures(
        pb.GetDocumentFiguresRequest(agency_code=UBND, include_sub_agencies=True)
    )
    own = next(r for r in ubnd.by_agency if r.agency_code == UBND)
    assert (own.outgoing_issued, own.outgoing_electronic, own.outgoing_digitally_signed) == (
        2,
        1,
        1,
    )
    assert own.digitally_signed_share == 0.5 and own.electronic_share == 0.5
    assert {r.agency_code for r in ubnd.by_agency} == {UBND, STP, SNV}
    assert ubnd.total.outgoing_issued == 2 and ubnd.total.incoming_arrived == 2

    # A specialist, or another agency's leader, does not get them.
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await env.as_("stp-cv").GetDocumentFigures(pb.GetDocumentFiguresRequest(agency_code=STP))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await env.as_("stp-ld").GetDocumentFigures(pb.GetDocumentFiguresRequest(agency_code=UBND))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
