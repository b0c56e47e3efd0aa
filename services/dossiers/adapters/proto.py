"""Domain ↔ contract (lgsp.api.dossiers.v1): the one place that knows both."""

from __future__ import annotations

from datetime import date, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from lgsp.api.dossiers.v1 import dossiers_pb2 as pb
from lgsp.api.dossiers.v1 import events_pb2
from services.dossiers.domain.deadlines import due_moment
from services.dossiers.domain.dossier import (
    Applicant,
    ApplicantKind,
    Channel,
    Dossier,
    HistoryEntry,
    Paper,
)
from services.dossiers.domain.errors import InvalidField
from services.dossiers.domain.fields import check_date
from services.dossiers.domain.figures import FigureRow
from services.dossiers.domain.procedure import (
    OnlineLevel,
    Procedure,
    ProcedureField,
    RequiredPaper,
    Step,
)
from services.dossiers.domain.status import Status


def ts(t: datetime | None) -> Timestamp | None:
    if t is None:
        return None
    out = Timestamp()
    out.FromDatetime(t)
    return out


def procedure_to_proto(p: Procedure) -> pb.Procedure:
    return pb.Procedure(
        code=p.code,
        name=p.name,
        field=pb.Field(code=p.field.code, name=p.field.name),
        agency_codes=list(p.agency_codes),
        processing_days=p.processing_days,
        fee_vnd=p.fee_vnd,
        fee_description=p.fee_description,
        required_papers=[
            pb.RequiredPaper(
                code=r.code,
                name=r.name,
                originals=r.originals,
                copies=r.copies,
                mandatory=r.mandatory,
                template_url=r.template_url,
            )
            for r in p.required_papers
        ],
        online_service_level=int(p.online_level),  # type: ignore[arg-type]
        result_description=p.result_description,
        legal_basis=p.legal_basis,
        active=p.active,
        update_time=ts(p.update_time),
        etag=p.etag,
        steps=[
            pb.ProcedureStep(name=s.name, actor=s.actor, working_days=s.working_days)
            for s in p.steps
        ],
        source_url=p.source_url,
    )


def procedure_from_proto(m: pb.Procedure) -> Procedure:
    return Procedure(
        code=m.code.strip(),
        name=m.name.strip(),
        field=ProcedureField(m.field.code.strip(), m.field.name.strip()),
        agency_codes=tuple(c.strip() for c in m.agency_codes),
        processing_days=m.processing_days,
        fee_vnd=m.fee_vnd,
        fee_description=m.fee_description,
        required_papers=tuple(
            RequiredPaper(
                r.code.strip(), r.name.strip(), r.originals, r.copies, r.mandatory, r.template_url
            )
            for r in m.required_papers
        ),
        online_level=OnlineLevel(m.online_service_level)
        if m.online_service_level in OnlineLevel._value2member_map_
        else OnlineLevel.UNSPECIFIED,
        result_description=m.result_description,
        legal_basis=m.legal_basis,
        active=m.active,
        steps=tuple(Step(s.name, s.actor, s.working_days) for s in m.steps),
        source_url=m.source_url.strip(),
    )


def applicant_from_proto(m: pb.Applicant) -> Applicant:
    birth: date | None = None
    if m.birth_date:
        birth = check_date("applicant.birth_date", m.birth_date)
    kind = m.kind if m.kind in ApplicantKind._value2member_map_ else 0
    return Applicant(
        kind=ApplicantKind(kind),
        full_name=m.full_name,
        identity_number=m.identity_number.strip(),
        birth_date=birth,
        organization_name=m.organization_name,
        organization_code=m.organization_code.strip(),
        phone=m.phone.strip(),
        email=m.email.strip(),
        address=m.address,
    )


def papers_from_proto(papers: list[pb.SubmittedPaper]) -> list[Paper]:
    return [
        Paper(
            p.paper_code.strip(), p.name.strip(), p.originals, p.copies, p.attachment_id, p.sha256
        )
        for p in papers
    ]


def channel_from_proto(c: int) -> Channel:
    if c not in Channel._value2member_map_:
        raise InvalidField("channel", "counter, online or postal")
    return Channel(c)


def dossier_to_proto(d: Dossier) -> pb.Dossier:
    a = d.applicant
    return pb.Dossier(
        id=d.id,
        receipt_code=d.receipt_code,
        procedure_code=d.procedure_code,
        procedure_name=d.procedure_name,
        agency_code=d.agency_code,
        applicant=pb.Applicant(
            kind=int(a.kind),  # type: ignore[arg-type]
            full_name=a.full_name,
            identity_number=a.identity_number,
            birth_date=a.birth_date.isoformat() if a.birth_date else "",
            organization_name=a.organization_name,
            organization_code=a.organization_code,
            phone=a.phone,
            email=a.email,
            address=a.address,
        ),
        status=int(d.status),  # type: ignore[arg-type]
        channel=int(d.channel),  # type: ignore[arg-type]
        papers=[
            pb.SubmittedPaper(
                paper_code=p.paper_code,
                name=p.name,
                originals=p.originals,
                copies=p.copies,
                attachment_id=p.attachment_id,
                sha256=p.sha256,
            )
            for p in d.papers
        ],
        processing_days=d.processing_days,
        submit_time=ts(d.submit_time),
        accept_time=ts(d.accept_time),
        due_time=ts(due_moment(d.due_date)) if d.due_date else None,
        finish_time=ts(d.finish_time),
        return_time=ts(d.return_time),
        receiver_user_id=d.receiver_user_id,
        handler_user_id=d.handler_user_id,
        fee_vnd=d.fee_vnd,
        fee_paid=d.fee_paid,
        result_number=d.result_number,
        result_attachment_id=d.result_attachment_id,
        on_time=bool(d.on_time),
        status_reason=d.status_reason,
        portal_synced=d.portal_synced,
        update_time=ts(d.update_time),
        etag=d.etag,
        portal_code=d.portal_code,
        postal_tracking_number=d.postal_tracking_number,
        postmark_date=d.postmark_date.isoformat() if d.postmark_date else "",
        payment_id=d.payment_id,
        payment_url=d.payment_url,
        paid_online=d.paid_online,
        rating=d.rating,  # type: ignore[arg-type]
        rating_time=ts(d.rating_time),
        rescheduled_due_time=ts(due_moment(d.rescheduled_date)) if d.rescheduled_date else None,
        apology_reason=d.apology_reason,
        apology_time=ts(d.apology_time),
    )


def history_to_proto(h: HistoryEntry) -> pb.DossierHistoryEntry:
    return pb.DossierHistoryEntry(
        time=ts(h.time),
        actor_id=h.actor_id,
        from_status=int(h.from_status or 0),  # type: ignore[arg-type]
        to_status=int(h.to_status),  # type: ignore[arg-type]
        comment=h.comment,
    )


def status_changed(d: Dossier, entry: HistoryEntry) -> events_pb2.DossierStatusChanged:
    return events_pb2.DossierStatusChanged(
        dossier_id=d.id,
        receipt_code=d.receipt_code,
        agency_code=d.agency_code,
        procedure_code=d.procedure_code,
        from_status=int(entry.from_status or 0),  # type: ignore[arg-type]
        to_status=int(entry.to_status),  # type: ignore[arg-type]
        reason=entry.comment,
        due_time=ts(due_moment(d.due_date)) if d.due_date else None,
        on_time=bool(d.on_time) if entry.to_status is Status.PROCESSED else False,
        applicant_name=d.applicant.full_name,
        applicant_email=d.applicant.email,
        actor_id=entry.actor_id,
        portal_code=d.portal_code,
        change_time=ts(entry.time),
        payment_url=d.payment_url if entry.to_status is Status.FEE_REQUESTED else "",
        fee_vnd=d.fee_vnd if entry.to_status is Status.FEE_REQUESTED else 0,
        paid_online=d.paid_online and entry.from_status is Status.FEE_REQUESTED,
    )


def fee_paid(
    d: Dossier, amount_vnd: int, reference: str, paid_time: datetime, actor_id: str
) -> events_pb2.DossierFeePaid:
    return events_pb2.DossierFeePaid(
        dossier_id=d.id,
        receipt_code=d.receipt_code,
        agency_code=d.agency_code,
        procedure_code=d.procedure_code,
        amount_vnd=amount_vnd,
        paid_online=d.paid_online,
        payment_id=d.payment_id if d.paid_online else "",
        reference=reference,
        paid_time=ts(paid_time),
        actor_id=actor_id,
    )


NEXT_STEP = {
    Status.SUBMITTED: "Hồ sơ đang được kiểm tra.",
    Status.ACCEPTED: "Hồ sơ đã được tiếp nhận, đang chờ giải quyết.",
    Status.IN_PROGRESS: "Hồ sơ đang được giải quyết; mời nhận kết quả theo ngày hẹn.",
    Status.SUPPLEMENT_REQUESTED: (
        "Đề nghị bổ sung giấy tờ theo hướng dẫn của cơ quan; thời hạn giải quyết tạm dừng "
        "đến khi nhận đủ giấy tờ."
    ),
    Status.FEE_REQUESTED: "Đề nghị nộp phí, lệ phí; hồ sơ được giải quyết tiếp sau khi nộp.",
    Status.PROCESSED: (
        "Kết quả đã có, mời mang giấy tiếp nhận hồ sơ đến Bộ phận Một cửa để nhận kết quả."
    ),
    Status.RESULT_RETURNED: "Đã trả kết quả. Mời ông/bà đánh giá mức độ hài lòng.",
    Status.REFUSED: "Hồ sơ không được tiếp nhận; xem phiếu từ chối của cơ quan.",
    Status.WITHDRAWN: "Hồ sơ đã được rút theo đề nghị của người nộp.",
    Status.STOPPED: "Cơ quan đã dừng giải quyết hồ sơ; xem văn bản thông báo lý do.",
}


def lookup_to_proto(d: Dossier, agency_name: str) -> pb.LookupDossierResponse:
    """What a citizen may see: no applicant, no papers, no officials, no reasons."""
    returned = d.status is Status.RESULT_RETURNED
    waiting_fee = d.status is Status.FEE_REQUESTED and not d.fee_paid
    message = NEXT_STEP.get(d.status, "")
    if returned and d.rating:
        message = "Đã trả kết quả. Cảm ơn ông/bà đã đánh giá."
    return pb.LookupDossierResponse(
        receipt_code=d.receipt_code,
        procedure_name=d.procedure_name,
        agency_name=agency_name,
        status=int(d.status),  # type: ignore[arg-type]
        submit_time=ts(d.submit_time),
        due_time=ts(due_moment(d.due_date)) if d.due_date else None,
        finish_time=ts(d.finish_time),
        message=message,
        rescheduled_due_time=ts(due_moment(d.rescheduled_date)) if d.rescheduled_date else None,
        rating=d.rating,  # type: ignore[arg-type]
        fee_vnd=d.fee_vnd if waiting_fee else 0,
        payment_url=d.payment_url if waiting_fee else "",
        can_rate=returned and not d.rating,
    )


def apology_issued(d: Dossier, actor: str) -> events_pb2.DossierApologyIssued:
    assert d.due_date is not None and d.rescheduled_date is not None
    return events_pb2.DossierApologyIssued(
        dossier_id=d.id,
        receipt_code=d.receipt_code,
        agency_code=d.agency_code,
        procedure_code=d.procedure_code,
        due_time=ts(due_moment(d.due_date)),
        rescheduled_due_time=ts(due_moment(d.rescheduled_date)),
        reason=d.apology_reason,
        applicant_name=d.applicant.full_name,
        applicant_email=d.applicant.email,
        actor_id=actor,
    )


def dossier_rated(d: Dossier) -> events_pb2.DossierRated:
    return events_pb2.DossierRated(
        dossier_id=d.id,
        receipt_code=d.receipt_code,
        agency_code=d.agency_code,
        procedure_code=d.procedure_code,
        rating=d.rating,  # type: ignore[arg-type]
        rating_time=ts(d.rating_time),
    )


def figures_to_proto(r: FigureRow) -> pb.DossierFigures:
    c = r.counts
    return pb.DossierFigures(
        agency_code=r.agency_code,
        procedure_code=r.procedure_code,
        month=r.month.strftime("%Y-%m") if r.month else "",
        received=c["received"],
        processed=c["processed"],
        processed_on_time=c["processed_on_time"],
        processed_early=c["processed_early"],
        processed_late=c["processed_late"],
        in_progress_on_time=r.in_progress_on_time,
        in_progress_late=r.in_progress_late,
        closed_unprocessed=c["closed_unprocessed"],
        on_time_share=r.share("processed_on_time", "processed"),
        average_processing_days=r.average_processing_days,
        received_online=c["received_online"],
        online_share=r.share("received_online", "received"),
        fee_paid=c["fee_paid"],
        paid_online=c["paid_online"],
        paid_online_share=r.share("paid_online", "fee_paid"),
        rated=c["rated"],
        average_rating=r.average_rating,
        top_rating_share=r.share("rating_top", "rated"),
    )
