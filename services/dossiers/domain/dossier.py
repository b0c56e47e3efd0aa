"""A dossier (hồ sơ) from intake at the desk to the return of the result.

`submit_dossier` checks what the desk checks before giving a receipt code: the procedure is
open and handled by the receiving agency, the applicant is identified (a well-formed personal
identification number), the papers' checklist is complete. Each later step is a method that
moves the status through `check_transition` (the one table of legal jumps) and records the
step in the dossier's history; nothing here knows of storage or gRPC.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import IntEnum

from services.dossiers.domain.deadlines import DueDateRule, on_time
from services.dossiers.domain.errors import IllegalTransition, InvalidField, NotEligible
from services.dossiers.domain.fields import (
    check_email,
    check_phone,
    check_sha256,
    check_text,
    check_token,
)
from services.dossiers.domain.identity_number import check_identity_number
from services.dossiers.domain.postal import check_postmark, check_tracking_number
from services.dossiers.domain.procedure import Procedure
from services.dossiers.domain.receipt import check_agency_code
from services.dossiers.domain.status import Status, check_transition

MAX_TEXT = 2000
# No fee or charge of a procedure comes near it; the national payment platform's limit for
# one transaction (the mock's MAX_AMOUNT_VND), so an absurd amount is refused here, before
# the platform is asked, and a counter fee cannot exceed what could be paid online.
MAX_FEE_VND = 10_000_000_000


class Channel(IntEnum):
    UNSPECIFIED = 0
    COUNTER = 1
    ONLINE = 2
    POSTAL = 3


class ApplicantKind(IntEnum):
    UNSPECIFIED = 0
    CITIZEN = 1
    ORGANIZATION = 2


@dataclass(frozen=True)
class Applicant:
    kind: ApplicantKind
    full_name: str
    identity_number: str
    birth_date: date | None = None
    organization_name: str = ""
    organization_code: str = ""
    phone: str = ""
    email: str = ""
    address: str = ""


@dataclass(frozen=True)
class Paper:
    paper_code: str
    name: str
    originals: int = 0
    copies: int = 0
    attachment_id: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class Submission:
    """A dossier as filed, through any of the three channels; each is checked by the same
    rules (`check_submission`), plus what its channel adds (`check_channel`)."""

    procedure_code: str
    agency_code: str
    applicant: Applicant
    channel: Channel
    papers: tuple[Paper, ...]
    request_id: str = ""
    portal_code: str = ""  # ONLINE: the national portal's code
    postal_tracking_number: str = ""  # POSTAL
    postmark_date: str = ""  # POSTAL, "YYYY-MM-DD" as written; "" when illegible


@dataclass(frozen=True)
class HistoryEntry:
    time: datetime
    actor_id: str
    from_status: Status | None
    to_status: Status
    comment: str = ""


@dataclass
class Dossier:
    id: str
    receipt_code: str
    procedure_code: str
    procedure_name: str
    agency_code: str
    applicant: Applicant
    status: Status
    channel: Channel
    papers: tuple[Paper, ...]
    processing_days: int
    submit_time: datetime
    receiver_user_id: str
    request_id: str = ""
    accept_time: datetime | None = None
    due_date: date | None = None
    finish_time: datetime | None = None
    return_time: datetime | None = None
    handler_user_id: str = ""
    fee_vnd: int = 0
    fee_paid: bool = False
    result_number: str = ""
    result_attachment_id: str = ""
    on_time: bool | None = None
    status_reason: str = ""
    paused_since: datetime | None = None  # the clock stopped then (status 5 or 6)
    paused_days: int = 0  # working days the clock stood still, in total
    # Online channel: the national portal's code of the dossier ("" for desk and post).
    portal_code: str = ""
    # Postal channel: the item's tracking number and the postmark's date (for the record: the
    # time limit counts from the receipt at the agency).
    postal_tracking_number: str = ""
    postmark_date: date | None = None
    # Whether the national portal has acknowledged the current status (set by the sync).
    portal_synced: bool = False
    # Fee through the national payment platform: its payment id, the citizen's payment page,
    # and whether the fee was paid there (not at the desk).
    payment_id: str = ""
    payment_url: str = ""
    paid_online: bool = False
    # The applicant's satisfaction with the result (0 = not rated) and when it was given.
    rating: int = 0
    rating_time: datetime | None = None
    # The last apology letter: the new appointment it promised (the legal due_date does not
    # move), why, and when (domain.citizen).
    rescheduled_date: date | None = None
    apology_reason: str = ""
    apology_time: datetime | None = None
    update_time: datetime | None = None
    version: int = 1
    # Steps taken since loaded, for the repository to append to the history.
    new_history: list[HistoryEntry] = field(default_factory=list, compare=False, repr=False)

    @property
    def etag(self) -> str:
        return str(self.version)

    # --- the steps -----------------------------------------------------------------------

    def accept(self, *, rule: DueDateRule, now: datetime, actor: str) -> None:
        """SUBMITTED → ACCEPTED: the appointment is fixed from now."""
        self._move(Status.ACCEPTED, now, actor)
        self.accept_time = now
        self.due_date = rule.due_date(now, self.processing_days)

    def refuse(self, reason: str, *, now: datetime, actor: str) -> None:
        self._move(Status.REFUSED, now, actor, _required("reason", reason))

    def start_processing(self, handler_user_id: str, *, now: datetime, actor: str) -> None:
        """ACCEPTED → IN_PROGRESS, with the specialist who handles it."""
        if self.status is not Status.ACCEPTED:  # 5/6 → 4 is SupplementDossier/RecordPayment
            raise IllegalTransition(self.status, Status.IN_PROGRESS)
        handler = _required("handler_user_id", handler_user_id)
        self._move(Status.IN_PROGRESS, now, actor, f"giao {handler} xử lý")
        self.handler_user_id = handler

    def request_supplement(
        self,
        reason: str,
        paper_codes: list[str],
        *,
        procedure: Procedure | None,
        now: datetime,
        actor: str,
    ) -> None:
        """→ SUPPLEMENT_REQUESTED: the clock stops until the papers come."""
        reason = _required("reason", reason)
        for i, code in enumerate(paper_codes):
            if procedure is not None and procedure.paper(code) is None:
                raise InvalidField(f"paper_codes[{i}]", f"{code} is not a paper of the procedure")
        self._move(Status.SUPPLEMENT_REQUESTED, now, actor, reason)
        self.paused_since = now

    def supplement(
        self, papers: list[Paper], *, rule: DueDateRule, now: datetime, actor: str
    ) -> None:
        """SUPPLEMENT_REQUESTED → IN_PROGRESS: the clock restarts, the appointment moves by the
        working days it stood still."""
        if self.status is not Status.SUPPLEMENT_REQUESTED:
            raise IllegalTransition(self.status, Status.IN_PROGRESS)
        if not papers:
            raise InvalidField("papers", "at least one paper is supplemented")
        checked = check_papers(papers)
        if len(self.papers) + len(checked) > MAX_PAPERS:
            raise InvalidField("papers", f"a dossier holds at most {MAX_PAPERS} papers")
        self._move(Status.IN_PROGRESS, now, actor, f"bổ sung {len(checked)} giấy tờ")
        self.papers = (*self.papers, *checked)
        self._resume(rule, now)

    def request_fee(
        self,
        fee_vnd: int,
        description: str,
        *,
        now: datetime,
        actor: str,
        payment_id: str = "",
        payment_url: str = "",
    ) -> None:
        """→ FEE_REQUESTED: the clock stops until the fee is paid; with the payment requested
        at the national payment platform, if any (`payment_url` is the applicant's page)."""
        if fee_vnd <= 0:
            raise InvalidField("fee_vnd", "a positive amount of đồng")
        if fee_vnd > MAX_FEE_VND:
            raise InvalidField("fee_vnd", f"at most {MAX_FEE_VND:,} đồng (one payment)")
        description = check_text("description", description, MAX_TEXT)
        self._move(Status.FEE_REQUESTED, now, actor, description)
        self.fee_vnd = fee_vnd
        self.fee_paid = self.paid_online = False
        self.payment_id, self.payment_url = payment_id, payment_url
        self.paused_since = now

    def record_payment(
        self, amount_vnd: int, reference: str, *, rule: DueDateRule, now: datetime, actor: str
    ) -> None:
        """FEE_REQUESTED → IN_PROGRESS once the whole fee is paid."""
        if self.status is not Status.FEE_REQUESTED:
            raise NotEligible(f"no fee is awaited: the dossier is {self.status}")
        if amount_vnd != self.fee_vnd:
            raise InvalidField("amount_vnd", f"the fee requested is {self.fee_vnd} đồng")
        reference = _required("payment_reference", reference)
        self._move(Status.IN_PROGRESS, now, actor, f"đã nộp phí, biên lai {reference}")
        self.fee_paid = True
        self.payment_url = ""  # an online payment requested was voided first
        self._resume(rule, now)

    def record_online_payment(
        self,
        payment_id: str,
        amount_vnd: int,
        transaction_ref: str,
        paid_at: datetime,
        *,
        rule: DueDateRule,
        now: datetime,
        actor: str = "",
    ) -> None:
        """FEE_REQUESTED → IN_PROGRESS from the national payment platform's word. The clock
        resumes when the applicant paid, not when the province heard of it (a notice held up
        by an outage, or found by reconciliation, costs the applicant nothing)."""
        if self.status is not Status.FEE_REQUESTED or self.fee_paid:
            raise IllegalTransition(self.status, Status.IN_PROGRESS)
        if payment_id != self.payment_id:
            raise InvalidField("payment_id", "not the payment requested for this dossier")
        if amount_vnd != self.fee_vnd:
            raise InvalidField("amount_vnd", f"the fee requested is {self.fee_vnd} đồng")
        self._move(
            Status.IN_PROGRESS,
            now,
            actor,
            f"đã thanh toán trực tuyến, mã giao dịch {transaction_ref}",
        )
        self.fee_paid = self.paid_online = True
        self.payment_url = ""
        since = self.paused_since or now
        self._resume(rule, max(since, min(paid_at, now)))

    @property
    def online_payment_pending(self) -> bool:
        return self.status is Status.FEE_REQUESTED and bool(self.payment_id) and not self.fee_paid

    def withdraw(self, reason: str, *, now: datetime, actor: str) -> None:
        self._move(Status.WITHDRAWN, now, actor, check_text("reason", reason, MAX_TEXT))
        self.paused_since = None

    def stop(self, reason: str, *, now: datetime, actor: str) -> None:
        self._move(Status.STOPPED, now, actor, _required("reason", reason))
        self.paused_since = None

    def complete(
        self,
        result_number: str,
        result_attachment_id: str,
        comment: str,
        *,
        now: datetime,
        actor: str,
    ) -> None:
        """IN_PROGRESS → PROCESSED: on time or late is decided here; late needs a comment."""
        check_transition(self.status, Status.PROCESSED)
        comment = check_text("comment", comment, MAX_TEXT)
        assert self.due_date is not None  # accepted before it could be in progress
        timely = on_time(now, self.due_date)
        if not timely and not comment.strip():
            raise InvalidField("comment", "required when the dossier is processed late")
        self._move(Status.PROCESSED, now, actor, comment.strip())
        self.finish_time = now
        self.on_time = timely
        self.result_number = check_text("result_number", result_number, 100)
        self.result_attachment_id = check_token("result_attachment_id", result_attachment_id, 100)

    def return_result(self, received_by: str, *, now: datetime, actor: str) -> None:
        received_by = check_text("received_by", received_by, 200)
        self._move(
            Status.RESULT_RETURNED, now, actor, f"người nhận: {received_by}" if received_by else ""
        )
        self.return_time = now

    # --- helpers -------------------------------------------------------------------------

    def _move(self, to: Status, now: datetime, actor: str, comment: str = "") -> None:
        check_transition(self.status, to)
        self.new_history.append(HistoryEntry(now, actor, self.status, to, comment))
        if comment or to in (Status.REFUSED, Status.WITHDRAWN, Status.STOPPED):
            self.status_reason = comment
        self.status = to
        self.update_time = now
        self.version += 1
        self.portal_synced = False  # the portal learns of it through the sync

    def _resume(self, rule: DueDateRule, now: datetime) -> None:
        if self.paused_since is not None and self.due_date is not None:
            paused = rule.paused_days(self.paused_since, now)
            self.paused_days += paused
            self.due_date = rule.extend(self.due_date, paused)
        self.paused_since = None


def _required(field_name: str, value: str) -> str:
    value = check_text(field_name, value, MAX_TEXT)
    if not value:
        raise InvalidField(field_name, "required")
    return value


MAX_PAPERS = 100
MAX_PAPER_COPIES = 100


def _check_paper(p: Paper, where: str) -> Paper:
    """`p` with its text normalised, if it holds; InvalidField naming the part otherwise."""
    for n, part in ((p.originals, "originals"), (p.copies, "copies")):
        if not 0 <= n <= MAX_PAPER_COPIES:
            raise InvalidField(f"{where}.{part}", f"from 0 to {MAX_PAPER_COPIES}")
    if p.originals + p.copies == 0:
        raise InvalidField(f"{where}.copies", "at least one original or copy")
    p = dataclasses.replace(
        p,
        paper_code=check_text(f"{where}.paper_code", p.paper_code, 40),
        name=check_text(f"{where}.name", p.name, 500),
        attachment_id=check_token(f"{where}.attachment_id", p.attachment_id, 100),
        sha256=check_sha256(f"{where}.sha256", p.sha256),
    )
    if not p.name and not p.paper_code:
        raise InvalidField(f"{where}.name", "a paper needs a code or a name")
    return p


def check_papers(papers: Sequence[Paper], where: str = "papers") -> tuple[Paper, ...]:
    """The papers, each checked and normalised; at most MAX_PAPERS of them."""
    if len(papers) > MAX_PAPERS:
        raise InvalidField(where, f"at most {MAX_PAPERS} papers")
    return tuple(_check_paper(p, f"{where}[{i}]") for i, p in enumerate(papers))


def check_applicant(a: Applicant) -> Applicant:
    """`a` with its text normalised, if the form holds; InvalidField naming the field."""
    if a.kind is ApplicantKind.UNSPECIFIED:
        raise InvalidField("applicant.kind", "citizen or organization")
    # 200: what the national population database takes for a name (the gateway's limit).
    a = dataclasses.replace(
        a,
        full_name=check_text("applicant.full_name", a.full_name, 200),
        identity_number=a.identity_number.strip(),
        organization_name=check_text("applicant.organization_name", a.organization_name, 500),
        organization_code=check_text("applicant.organization_code", a.organization_code, 20),
        phone=check_phone("applicant.phone", a.phone),
        email=check_email("applicant.email", a.email),
        address=check_text("applicant.address", a.address, 500),
    )
    if not a.full_name:
        raise InvalidField("applicant.full_name", "required")
    check_identity_number(a.identity_number, a.birth_date, field="applicant.identity_number")
    if a.kind is ApplicantKind.ORGANIZATION:
        if not a.organization_name:
            raise InvalidField("applicant.organization_name", "required for an organization")
        code = a.organization_code.replace("-", "")
        if not (code.isascii() and code.isdigit() and len(code) in (10, 13)):
            raise InvalidField(
                "applicant.organization_code", "an enterprise or tax code of 10 or 13 digits"
            )
    return a


def check_checklist(procedure: Procedure, papers: list[Paper]) -> None:
    """Every mandatory paper of the procedure is there, with its originals and copies."""
    filed: dict[str, tuple[int, int]] = {}
    for i, p in enumerate(check_papers(papers)):
        if p.paper_code:
            if procedure.paper(p.paper_code) is None:
                raise InvalidField(
                    f"papers[{i}].paper_code", f"{p.paper_code} is not a paper of the procedure"
                )
            o, c = filed.get(p.paper_code, (0, 0))
            filed[p.paper_code] = (o + p.originals, c + p.copies)
    missing = []
    for req in procedure.required_papers:
        if not req.mandatory:
            continue
        o, c = filed.get(req.code, (0, 0))
        # An original stands in for a copy; a copy never for an original.
        if o < req.originals or o + c < req.originals + req.copies:
            missing.append(
                f"{req.code} {req.name} ({req.originals} bản chính, {req.copies} bản sao)"
            )
    if missing:
        raise InvalidField("papers", "missing: " + "; ".join(missing))


def submit_dossier(
    procedure: Procedure | None,
    submission: Submission,
    *,
    receipt_code: str,
    actor: str,
    now: datetime,
    received: date,
) -> Dossier:
    """A new dossier in status SUBMITTED, if the desk's checks pass; InvalidField names the
    first field that fails. The receipt code is given by the caller (it needs the day's
    sequence, which storage keeps); `received` is the day of receipt in the province."""
    s = submission
    check_submission(
        procedure, s.procedure_code, s.agency_code, s.applicant, s.channel, list(s.papers)
    )
    tracking, postmark = check_channel(s, received)
    assert procedure is not None
    channel = Channel.COUNTER if s.channel is Channel.UNSPECIFIED else s.channel
    dossier = Dossier(
        id=str(uuid.uuid4()),
        receipt_code=receipt_code,
        procedure_code=procedure.code,
        procedure_name=procedure.name,
        agency_code=s.agency_code.strip(),
        applicant=check_applicant(s.applicant),
        status=Status.SUBMITTED,
        channel=channel,
        papers=tuple(_named(p, procedure) for p in check_papers(s.papers)),
        processing_days=procedure.processing_days,
        submit_time=now,
        receiver_user_id=actor,
        request_id=s.request_id,
        fee_vnd=procedure.fee_vnd,
        portal_code=s.portal_code.strip(),
        postal_tracking_number=tracking,
        postmark_date=postmark,
        update_time=now,
    )
    comment = _INTAKE_COMMENT[channel]
    if channel is Channel.ONLINE:
        comment += f" (mã hồ sơ trên Cổng: {dossier.portal_code})"
    elif channel is Channel.POSTAL:
        comment += f" (số hiệu bưu gửi {tracking})"
    dossier.new_history.append(HistoryEntry(now, actor, None, Status.SUBMITTED, comment))
    return dossier


def _named(p: Paper, procedure: Procedure) -> Paper:
    """A paper filed by its code alone carries the catalogue's name, so the slip, the history
    and the portal read "Tờ khai …", not "TK"."""
    req = procedure.paper(p.paper_code) if p.paper_code and not p.name else None
    return dataclasses.replace(p, name=req.name) if req is not None else p


_INTAKE_COMMENT = {
    Channel.COUNTER: "tiếp nhận",
    Channel.ONLINE: "tiếp nhận trực tuyến từ Cổng Dịch vụ công quốc gia",
    Channel.POSTAL: "tiếp nhận qua dịch vụ bưu chính công ích",
}


def check_channel(s: Submission, received: date) -> tuple[str, date | None]:
    """What the channel adds: online dossiers carry the portal's code (and arrive from the
    portal, never from a clerk); postal ones a tracking number and maybe a postmark. The
    tracking number and postmark date, checked."""
    if s.channel is Channel.ONLINE:
        if not s.portal_code.strip() or len(s.portal_code.strip()) > 64:
            raise InvalidField("portal_code", "an online dossier carries the portal's code")
    elif s.portal_code.strip():
        raise InvalidField("portal_code", "only for dossiers filed online")
    if s.channel is Channel.POSTAL:
        tracking = check_tracking_number(s.postal_tracking_number)
        return tracking, check_postmark(s.postmark_date, received)
    if s.postal_tracking_number.strip():
        raise InvalidField("postal_tracking_number", "only for dossiers sent by post")
    if s.postmark_date.strip():
        raise InvalidField("postmark_date", "only for dossiers sent by post")
    return "", None


def check_submission(
    procedure: Procedure | None,
    procedure_code: str,
    agency_code: str,
    applicant: Applicant,
    channel: Channel,
    papers: list[Paper],
) -> None:
    """The desk's checks, before a receipt code is spent on the dossier."""
    if not procedure_code.strip():
        raise InvalidField("procedure_code", "required")
    if procedure is None:
        raise InvalidField("procedure_code", f"{procedure_code} is not in the catalogue")
    if not procedure.active:
        raise InvalidField("procedure_code", f"{procedure.code} no longer takes new dossiers")
    agency_code = check_agency_code(agency_code)
    if agency_code not in procedure.agency_codes:
        raise InvalidField(
            "agency_code", f"{agency_code} does not handle procedure {procedure.code}"
        )
    if channel not in Channel:
        raise InvalidField("channel", "counter, online or postal")
    check_applicant(applicant)
    check_checklist(procedure, papers)
