"""The search projection's readers: documents' events → who finds a document, following the
documents service's GetDocument rule (policy.can_read); and the caller's side of it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from lgsp.agencies import Agency, AgencyDirectory
from lgsp.api.documents.v1 import documents_pb2 as pb
from lgsp.api.documents.v1 import events_pb2 as ev
from lgsp.auth import Principal
from services.search.index import Caller
from services.search.index.base import readers, rights_terms
from services.search.service_layer.projection import OWN, DocState, apply
from services.search.service_layer.rights import caller_of

UBND, STP, SNV, XA = "000.00.00.H27", "000.01.30.H27", "000.02.30.H27", "000.00.61.H27"
AT = datetime(2026, 3, 2, 8, tzinfo=UTC)
SENT = Timestamp(seconds=1_772_000_000)


def doc(**kw: object) -> pb.Document:
    m = pb.Document(
        id="d1",
        direction=pb.DIRECTION_OUTGOING,
        agency_code=UBND,
        outgoing_status=pb.OUTGOING_STATUS_ISSUED,
        document_type_code="QĐ",
        number_notation="5/QĐ-UBND",
        subject="Quyết định về cải cách hành chính",
        promulgation_date="2026-03-02",
        confidentiality=pb.CONFIDENTIALITY_NORMAL,
        recipients=[pb.Recipient(agency_code=STP), pb.Recipient(agency_code=SNV)],
    )
    for k, v in kw.items():
        setattr(m, k, v)
    return m


def run(*events: object) -> DocState:
    state: DocState | None = None
    for offset, e in enumerate(events):
        state, _ = apply(state, e, offset, AT)  # type: ignore[arg-type]
    assert state is not None
    return state


def sent(*codes: str, delivered: tuple[str, ...] | None = None) -> ev.DocumentSent:
    return ev.DocumentSent(
        document_id="d1",
        agency_code=UBND,
        recipients=[pb.Recipient(agency_code=c, send_time=SENT) for c in codes],
        delivered_agency_codes=list(codes if delivered is None else delivered),
    )


def test_listed_recipients_read_only_what_was_sent_to_them() -> None:
    issued = ev.DocumentIssued(document=doc())
    s = run(issued)
    # Its own officials ("own:"), and the agencies above it (bare code): it was issued.
    assert s.doc.reader_agency_codes == (OWN + UBND, UBND)
    assert s.doc.recipient_agency_codes == (STP, SNV)
    s = run(issued, sent(STP))
    assert s.doc.reader_agency_codes == (OWN + UBND, UBND, OWN + STP) and s.doc.status == "sent"
    s = run(issued, sent(STP), sent(SNV, delivered=(STP, SNV)))
    assert s.doc.reader_agency_codes == (OWN + UBND, UBND, OWN + STP, OWN + SNV)
    # Events written before delivered_agency_codes: each send's recipients add up.
    s = run(issued, sent(STP, delivered=()), sent(SNV, delivered=()))
    assert s.doc.reader_agency_codes == (OWN + UBND, UBND, OWN + STP, OWN + SNV)


def test_recall_keeps_the_recipients_it_was_sent_to_and_unpublishes() -> None:
    legal = ev.DocumentIssued(document=doc(document_type_code="QĐ-QPPL"))
    assert run(legal).doc.public
    recalled = ev.DocumentRecalled(
        document_id="d1", recipient_agency_codes=[STP], delivered_agency_codes=[STP]
    )
    s = run(legal, sent(STP), recalled)
    assert s.doc.status == "recalled" and not s.doc.public
    assert s.doc.reader_agency_codes == (OWN + UBND, UBND, OWN + STP)
    secret = ev.DocumentIssued(
        document=doc(document_type_code="QĐ-QPPL", confidentiality=pb.CONFIDENTIALITY_SECRET)
    )
    assert not run(secret).doc.public


def test_an_incoming_copy_is_read_by_its_holder_not_its_sender() -> None:
    m = doc(
        direction=pb.DIRECTION_INCOMING,
        agency_code=STP,
        sender_agency_code=UBND,
        incoming_status=pb.INCOMING_STATUS_ARRIVED,
    )
    s = run(ev.DocumentReceived(document=m))
    # Its holder's own officials only: not the sender, not the agencies above.
    assert s.doc.reader_agency_codes == (OWN + STP,) and s.doc.recipient_agency_codes == ()
    # The clerk corrects the registration (UpdateDocument emits DocumentDrafted).
    fixed = ev.DocumentDrafted(document=doc(**{**_incoming(), "subject": "Đã sửa trích yếu"}))
    s = run(ev.DocumentReceived(document=m), fixed)
    assert s.doc.subject == "Đã sửa trích yếu" and s.doc.reader_agency_codes == (OWN + STP,)


def _incoming() -> dict[str, object]:
    return {
        "direction": pb.DIRECTION_INCOMING,
        "agency_code": STP,
        "sender_agency_code": UBND,
        "incoming_status": pb.INCOMING_STATUS_ARRIVED,
    }


def test_drafts_are_found_by_their_agency_and_cancelled_ones_stay() -> None:
    drafted = ev.DocumentDrafted(document=doc(outgoing_status=pb.OUTGOING_STATUS_DRAFT))
    state, action = apply(None, drafted, 0, AT)
    assert action == "upsert" and state is not None
    # A draft is its agency's own: not the agencies above it.
    assert state.doc.reader_agency_codes == (OWN + UBND,) and state.doc.status == "draft"
    cancelled = ev.OutgoingStatusChanged(document_id="d1", to_status=pb.OUTGOING_STATUS_CANCELLED)
    state, action = apply(state, cancelled, 1, AT)
    assert action == "upsert" and state is not None and state.doc.status == "cancelled"


def test_state_round_trip_keeps_readers_and_reads_an_older_state() -> None:
    s = run(ev.DocumentIssued(document=doc()), sent(STP))
    back = DocState.from_json(s.to_json(), {})
    assert back.doc == s.doc and back.delivered == (STP,)
    raw = json.loads(s.to_json())
    del raw["doc"]["reader_agency_codes"], raw["delivered"]  # as stored before readers
    older = DocState.from_json(json.dumps(raw), {})
    assert older.doc.reader_agency_codes is None and older.delivered == ()


TREE = AgencyDirectory(
    [
        Agency(UBND, "UBND tỉnh", "UBND"),
        Agency(STP, "Sở Tư pháp", "STP", UBND),
        Agency(SNV, "Sở Nội vụ", "SNV", UBND),
        Agency(XA, "UBND xã", "UBND", UBND),
    ]
)


def official(agency: str, *roles: str) -> Principal:
    return Principal(agency, "user", agency_code=agency, grants={agency: frozenset(roles)})


def test_a_caller_reads_where_it_holds_a_reader_role_and_below() -> None:
    province = caller_of(official(UBND, "specialist"), TREE)
    # Its own agency's documents ("own:"), and what the agencies below it issued.
    assert province.agency_code == UBND
    assert set(province.agencies) == {STP, SNV, XA, OWN + UBND}
    assert province.may_read_confidential  # documents reads confidential ones alike
    assert caller_of(official(STP, "clerk"), TREE) == Caller(STP, True, (OWN + STP,))
    # No reader role (a one-stop officer): public documents only.
    nobody = caller_of(official(XA, "one_stop_officer"), TREE)
    assert rights_terms(nobody) == ["n:*public*"]
    # Without the tree: the agencies of the grants only (fails closed).
    assert caller_of(official(UBND, "leader")).agencies == (OWN + UBND,)


def test_readers_meet_rights_only_where_get_document_would_answer() -> None:
    s = run(ev.DocumentIssued(document=doc(confidentiality=pb.CONFIDENTIALITY_SECRET)))

    def sees(p: Principal) -> bool:
        return bool(set(readers(s.indexed())) & set(rights_terms(caller_of(p, TREE))))

    assert sees(official(UBND, "clerk")) and sees(official(UBND, "specialist"))
    assert not sees(official(STP, "leader")) and not sees(official(UBND, "one_stop_officer"))
    s = run(ev.DocumentIssued(document=doc()), sent(STP))
    assert sees(official(STP, "specialist")) and not sees(official(SNV, "leader"))


def test_direction_priority_and_arrival_date_come_from_the_document() -> None:
    # 2026-03-01 20:00 UTC is 2 March in Vietnam: the arrival date is the Vietnamese day.
    arrived = Timestamp(seconds=int(datetime(2026, 3, 1, 20, tzinfo=UTC).timestamp()))
    m = doc(**_incoming(), priority=pb.PRIORITY_VERY_URGENT)
    m.arrival_time.CopyFrom(arrived)
    s = run(ev.DocumentReceived(document=m))
    assert (s.doc.direction, s.doc.priority, str(s.doc.arrival_date)) == (
        "incoming", "very_urgent", "2026-03-02",
    )  # fmt: skip
    assert DocState.from_json(s.to_json(), {}).doc == s.doc
    out = run(ev.DocumentIssued(document=doc()))
    assert (out.doc.direction, out.doc.priority) == ("outgoing", "normal")
    assert out.doc.arrival_date is None
    raw = json.loads(s.to_json())
    for name in ("direction", "priority", "arrival_date"):
        del raw["doc"][name]  # as stored before these fields
    assert DocState.from_json(json.dumps(raw), {}).doc.direction == ""
